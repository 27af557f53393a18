import time
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Model

from demo.seeding import steps
from demo.seeding.context import (
    DemoAccount,
    Progress,
    SeedContext,
    SeedOptions,
    foreign_keys_drop,
    foreign_keys_restore,
)
from geomarket.answer_cache import Namespace, versions_bump
from merchants.models import Merchant


@dataclass
class SeedResult:
    skipped: bool
    counts: dict[str, int] = field(default_factory=dict)
    demo_accounts: list[DemoAccount] = field(default_factory=list)
    first_merchant_id: int | None = None
    seconds: float = 0.0


def _models() -> list[type[Model]]:
    """Every model the steps write, once each, in the order the steps name them."""
    models: dict[str, type[Model]] = {}
    for step in steps.SEED_STEPS:
        for model in step.models:
            models.setdefault(model._meta.db_table, model)
    return list(models.values())


def demo_seed(*, options: SeedOptions, if_empty: bool, progress: Progress) -> SeedResult:
    """Fill an empty database with a demo city, all or nothing.

    1. Lock every table the steps write, so a concurrent seed (two `make run`s) waits
       and then finds the data, and no other insert takes ids from reserved blocks.
    2. Stop if merchants exist: quietly with `if_empty`, else with `SeedRefused`.
    3. Drop the foreign keys between those tables (see `foreign_keys_drop`): checked
       row by row at commit they cost more than the rest of the bench seed. From here
       on, the tables are locked against reads too, until the commit.
    4. Run `steps.SEED_STEPS` in order.
    5. ANALYZE the tables, so the planner sees a million products rather than none.
    6. Add the foreign keys back, each checked over all rows in one join.
    """
    started = time.monotonic()
    models = _models()
    tables = [model._meta.db_table for model in models]
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    with transaction.atomic(), connection.cursor() as cursor:
        # SHARE ROW EXCLUSIVE holds writers back; reads go through until the foreign
        # keys are dropped, which needs an exclusive lock.
        cursor.execute(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")
        if Merchant.objects.exists():
            if if_empty:
                return SeedResult(skipped=True, seconds=time.monotonic() - started)
            raise steps.SeedRefused(
                "Merchants already exist; seed_demo fills an empty database. "
                "Pass --if-empty to skip quietly, or start from an empty database."
            )
        # Answers cached before the seed show an empty city.
        versions_bump(Namespace.CATALOG, Namespace.MERCHANTS)
        ctx = SeedContext(options=options, cursor=cursor, progress=progress)
        foreign_keys = foreign_keys_drop(ctx=ctx, models=models, referenced=models)
        for step in steps.SEED_STEPS:
            step.run(ctx)
        progress.start(label="analyze", total=len(tables))
        cursor.execute(f"ANALYZE {quoted}")
        progress.finish()
        progress.start(label="foreign keys", total=len(foreign_keys))
        foreign_keys_restore(ctx=ctx, statements=foreign_keys)
        progress.finish()
        progress.start(label="commit", total=1)
    progress.finish()
    return SeedResult(
        skipped=False,
        counts=ctx.counts,
        demo_accounts=ctx.demo_accounts,
        first_merchant_id=ctx.merchants[0].id,
        seconds=time.monotonic() - started,
    )
