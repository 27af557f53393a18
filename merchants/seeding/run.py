import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from merchants.models import Merchant
from merchants.seeding import steps
from merchants.seeding.context import DemoAccount, Progress, SeedContext, SeedOptions


@dataclass
class SeedResult:
    skipped: bool
    counts: dict[str, int] = field(default_factory=dict)
    demo_accounts: list[DemoAccount] = field(default_factory=list)
    first_merchant_id: int | None = None
    seconds: float = 0.0


def _tables() -> list[str]:
    tables: list[str] = []
    for step in steps.SEED_STEPS:
        for model in step.models:
            if model._meta.db_table not in tables:
                tables.append(model._meta.db_table)
    return tables


def demo_seed(*, options: SeedOptions, if_empty: bool, progress: Progress) -> SeedResult:
    """Fill an empty database with a demo city, all or nothing.

    1. Lock every table the steps write, so a concurrent seed (two `make run`s) waits
       and then finds the data, and no other insert takes ids from reserved blocks.
    2. Stop if merchants exist: quietly with `if_empty`, else with `SeedRefused`.
    3. Run `steps.SEED_STEPS` in order.
    4. ANALYZE the tables, so the planner sees a million products rather than none.
    """
    started = time.monotonic()
    tables = _tables()
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    with transaction.atomic(), connection.cursor() as cursor:
        # SHARE ROW EXCLUSIVE lets reads through and holds writers back.
        cursor.execute(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")
        if Merchant.objects.exists():
            if if_empty:
                return SeedResult(skipped=True, seconds=time.monotonic() - started)
            raise steps.SeedRefused(
                "Merchants already exist; seed_demo fills an empty database. "
                "Pass --if-empty to skip quietly, or start from an empty database."
            )
        ctx = SeedContext(options=options, cursor=cursor, progress=progress)
        for step in steps.SEED_STEPS:
            step.run(ctx)
        progress.start(label="analyze", total=len(tables))
        cursor.execute(f"ANALYZE {quoted}")
        progress.finish()
        # The foreign keys are deferred: the database checks every row at commit.
        progress.start(label="commit", total=1)
    progress.finish()
    return SeedResult(
        skipped=False,
        counts=ctx.counts,
        demo_accounts=ctx.demo_accounts,
        first_merchant_id=ctx.merchants[0].id,
        seconds=time.monotonic() - started,
    )
