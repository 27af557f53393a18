"""What the seed steps share: options, a per-step random generator, reserved ids,
bulk COPY into PostgreSQL, and a plain progress bar on stderr."""

import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

from geomarket.geo import geodesic_destination

BERLIN = (52.52, 13.405)
DEFAULT_SEED = 42
# Timestamps hang off a fixed date, not now(), so equal seeds give equal rows.
BASE_TIME = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
# Orders are the exception: they fill the ORDER_WINDOW before an anchor that defaults to
# the moment of seeding, so "revenue over the last 30 days" finds data whenever the demo
# is loaded. Equal seeds and equal anchors (--orders-until) give equal orders.
ORDER_WINDOW = timedelta(days=90)
# Every product exists from BASE_TIME on, so the window may not start before it.
EARLIEST_ORDERS_UNTIL = BASE_TIME + ORDER_WINDOW

# Demo accounts share one documented password; bulk-created owners cannot log in.
DEMO_PASSWORD = "geomarket-demo"  # noqa: S105 - printed and documented on purpose
DEMO_CUSTOMER = "demo-customer"
DEMO_OWNER = "demo-owner"
DEMO_OPERATOR = "demo-operator"
DEMO_COURIER = "demo-courier"

MAX_MERCHANTS = 1_000_000
MAX_PRODUCTS_PER_MERCHANT = 10_000
MAX_ORDERS = 10_000_000
MAX_COURIERS = 1_000_000
MAX_RADIUS_KM = 200.0
# The largest zone reaches about 8 km past its merchant (see steps.zones_seed).
ZONE_REACH_KM = 8.0


@dataclass(frozen=True)
class Preset:
    merchants: int
    products_per_merchant: int
    radius_km: float
    orders: int
    couriers: int
    # Merchants seeded always open, as a share of all: without weekly hours, or with
    # `round_the_clock` ones (every day from midnight to midnight).
    always_open_share: float = 0.0
    round_the_clock: bool = False


PRESETS: dict[str, Preset] = {
    # What `make run` loads: a small city a person can click through.
    "demo": Preset(
        merchants=25,
        products_per_merchant=60,
        radius_km=12.0,
        orders=2_000,
        couriers=40,
        always_open_share=0.1,
    ),
    # Greater Berlin at marketplace scale, for benchmarks and query plans.
    "bench": Preset(
        merchants=20_000,
        products_per_merchant=50,
        radius_km=25.0,
        orders=1_000_000,
        couriers=2_000,
        # Every merchant has hours, and a fifth keep them round the clock: orders placed
        # by the benchmark at any hour find open shops.
        always_open_share=0.2,
        round_the_clock=True,
    ),
}


class SeedOptionsError(ValueError):
    pass


class SeedRefused(Exception):
    """The database already holds data the seed would collide with."""


@dataclass(frozen=True)
class SeedOptions:
    merchants: int
    products_per_merchant: int
    seed: int
    center_lat: float
    center_lng: float
    radius_km: float
    orders: int
    # Orders are placed in the ORDER_WINDOW before this moment (aware, whole seconds).
    orders_until: datetime
    # Couriers, the demo courier among them (none at all with 0).
    couriers: int
    # Whether `orders_until` is the moment of seeding (no --orders-until was given): then
    # the couriers' last locations hang off the moment they are written instead, so that
    # they are still fresh when a seed that takes minutes commits (see `couriers`).
    orders_until_is_now: bool = False
    # Merchants always open, as a share; with any, the demo owner's merchant is one of
    # them, so its README walk-through works at any hour. Without weekly hours, or with
    # hours round the clock.
    always_open_share: float = 0.0
    round_the_clock: bool = False

    @property
    def products(self) -> int:
        return self.merchants * self.products_per_merchant

    @property
    def radius_m(self) -> float:
        return self.radius_km * 1000


def center_parse(value: str) -> tuple[float, float]:
    """'LAT,LNG' in degrees, as people copy it from a map."""
    try:
        lat_text, lng_text = value.split(",")
        return float(lat_text), float(lng_text)
    except ValueError as exc:
        raise SeedOptionsError(
            f"--center must be LAT,LNG in degrees, e.g. 52.52,13.405; got {value!r}."
        ) from exc


def orders_until_parse(value: str) -> datetime:
    """An ISO 8601 date or date and time; without an offset it is UTC."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise SeedOptionsError(
            "--orders-until must be an ISO 8601 date or date and time, "
            f"e.g. 2026-01-15 or 2026-01-15T18:30:00+01:00; got {value!r}."
        ) from exc


def seed_options_build(
    *,
    preset: str = "demo",
    merchants: int | None = None,
    products_per_merchant: int | None = None,
    seed: int | None = None,
    center: tuple[float, float] | str | None = None,
    radius_km: float | None = None,
    orders: int | None = None,
    orders_until: datetime | str | None = None,
    couriers: int | None = None,
) -> SeedOptions:
    """Options from a preset, with any value given explicitly taking precedence.

    `orders_until` defaults to now, so a seed loaded today has orders up to today.
    """
    if preset not in PRESETS:
        raise SeedOptionsError(f"Unknown preset {preset!r}; choose from {', '.join(PRESETS)}.")
    defaults = PRESETS[preset]
    if isinstance(center, str):
        center = center_parse(center)
    lat, lng = center if center is not None else BERLIN
    if isinstance(orders_until, str):
        orders_until = orders_until_parse(orders_until)
    orders_until_is_now = orders_until is None
    if orders_until is None:
        orders_until = datetime.now(UTC)
    if orders_until.tzinfo is None:
        orders_until = orders_until.replace(tzinfo=UTC)
    # Whole seconds in UTC: the orders step counts time in integer seconds.
    orders_until = orders_until.astimezone(UTC).replace(microsecond=0)
    options = SeedOptions(
        merchants=defaults.merchants if merchants is None else merchants,
        products_per_merchant=(
            defaults.products_per_merchant
            if products_per_merchant is None
            else products_per_merchant
        ),
        seed=DEFAULT_SEED if seed is None else seed,
        center_lat=float(lat),
        center_lng=float(lng),
        radius_km=defaults.radius_km if radius_km is None else float(radius_km),
        orders=defaults.orders if orders is None else orders,
        orders_until=orders_until,
        couriers=defaults.couriers if couriers is None else couriers,
        orders_until_is_now=orders_until_is_now,
        always_open_share=defaults.always_open_share,
        round_the_clock=defaults.round_the_clock,
    )
    _options_validate(options)
    return options


def _options_validate(options: SeedOptions) -> None:
    # The demo owner owns the first merchant, so there is always at least one.
    if not 1 <= options.merchants <= MAX_MERCHANTS:
        raise SeedOptionsError(f"--merchants must be between 1 and {MAX_MERCHANTS:,}.")
    if not 0 <= options.products_per_merchant <= MAX_PRODUCTS_PER_MERCHANT:
        raise SeedOptionsError(
            f"--products-per-merchant must be between 0 and {MAX_PRODUCTS_PER_MERCHANT:,}."
        )
    if not 0 <= options.orders <= MAX_ORDERS:
        raise SeedOptionsError(f"--orders must be between 0 and {MAX_ORDERS:,}.")
    if not 0 <= options.couriers <= MAX_COURIERS:
        raise SeedOptionsError(f"--couriers must be between 0 and {MAX_COURIERS:,}.")
    if options.orders_until < EARLIEST_ORDERS_UNTIL:
        raise SeedOptionsError(
            f"--orders-until must be {EARLIEST_ORDERS_UNTIL:%Y-%m-%d} or later: the "
            f"{ORDER_WINDOW.days} days of orders before it must not predate the catalog."
        )
    if not 0.1 <= options.radius_km <= MAX_RADIUS_KM:
        raise SeedOptionsError(f"--radius-km must be between 0.1 and {MAX_RADIUS_KM:g}.")
    if not -80 <= options.center_lat <= 80:
        raise SeedOptionsError("The centre's latitude must be between -80 and 80.")
    if not -180 <= options.center_lng <= 180:
        raise SeedOptionsError("The centre's longitude must be between -180 and 180.")
    # Polygons crossing the antimeridian need splitting; a demo city need not go there.
    reach_m = (options.radius_km + ZONE_REACH_KM) * 1000
    for bearing in (90, 270):
        _, lng = geodesic_destination(
            lat=options.center_lat,
            lng=options.center_lng,
            bearing_deg=bearing,
            distance_m=reach_m,
        )
        if (bearing == 90 and lng < options.center_lng) or (
            bearing == 270 and lng > options.center_lng
        ):
            raise SeedOptionsError("The seeded area must not cross the 180° meridian.")


class Progress:
    """A one-line progress bar per step, redrawn in place on a terminal.

    Off a terminal (logs, CI, tests) only each step's final line is written, so a
    million rows do not become a million lines.
    """

    width = 30

    def __init__(self, *, write: Callable[[str], None] | None, interactive: bool) -> None:
        self._write = write
        self._interactive = interactive
        self._label = ""
        self._total = 0
        self._done = 0
        self._shown = -1
        self._started = 0.0

    def start(self, *, label: str, total: int) -> None:
        self._label = label
        self._total = total
        self._done = 0
        self._shown = -1
        self._started = time.monotonic()
        self._draw()

    def advance(self, amount: int = 1) -> None:
        self._done += amount
        self._draw()

    def finish(self) -> None:
        if self._write is None:
            return
        self._done = self._total
        elapsed = time.monotonic() - self._started
        line = f"{self._line(100)}  {elapsed:6.1f}s\n"
        self._write(("\r" if self._interactive else "") + line)

    def _draw(self) -> None:
        if self._write is None or not self._interactive:
            return
        percent = 100 if self._total == 0 else min(100, self._done * 100 // self._total)
        if percent == self._shown:
            return
        self._shown = percent
        self._write("\r" + self._line(percent))

    def _line(self, percent: int) -> str:
        filled = self.width * percent // 100
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self._label:<16} [{bar}] {percent:3d}%  {self._done:>10,} / {self._total:,}"


@dataclass
class MerchantPlan:
    id: int
    kind: str
    lat: float
    lng: float
    is_active: bool
    created_at: datetime


@dataclass
class DemoAccount:
    role: str
    username: str
    password: str
    user_id: int
    token: str = ""
    # What the summary says about the account beyond its role, when a step knows more.
    note: str = ""


@dataclass(frozen=True)
class LiveOrder:
    """An order the orders step left in flight, for the couriers step to hand out."""

    id: int
    merchant_id: int
    status: str
    # Where its merchant is.
    lat: float
    lng: float
    # The demo customer's own order (the first one in flight).
    is_demo_customers: bool


@dataclass
class SeedContext:
    """State the steps hand on to each other; later steps (couriers, orders) read it."""

    options: SeedOptions
    cursor: CursorWrapper
    progress: Progress
    base_time: datetime = BASE_TIME
    category_ids: dict[str, int] = field(default_factory=dict)
    demo_accounts: list[DemoAccount] = field(default_factory=list)
    # owner_ids[i] owns merchants[i].
    owner_ids: list[int] = field(default_factory=list)
    merchants: list[MerchantPlan] = field(default_factory=list)
    # Products are written merchant by merchant in one id block, so a product's id and
    # its merchant follow from these two without keeping a million rows in memory.
    product_id_start: int = 0
    product_counts: list[int] = field(default_factory=list)
    # The orders in flight (confirmed to picked up), oldest first, as the orders step
    # wrote them: without a courier.
    live_orders: list[LiveOrder] = field(default_factory=list)
    # Rows written, by a name fit for the summary line ("products": 1500).
    counts: dict[str, int] = field(default_factory=dict)

    def rng(self, step: str) -> random.Random:
        """A generator of its own for each step.

        Seeding by (seed, step) keeps a step's rows unchanged when another step is
        added before it or draws a different number of values.
        """
        return random.Random(f"{self.options.seed}/{step}")  # noqa: S311 - demo data, no secrets


def ids_reserve(*, ctx: SeedContext, model: type[Model], count: int) -> int:
    """Reserve `count` consecutive primary keys of `model` and return the first.

    The sequence moves past the block at once (and past any id written by hand), so the
    rows can name each other before they exist and the sequence is already right
    afterwards. The seed holds a lock on the table, so no other insert takes an id from
    the block in between.
    """
    table = model._meta.db_table
    quoted = connection.ops.quote_name(table)
    # Only the model's own table name is interpolated, quoted.
    sql = (
        "SELECT setval(pg_get_serial_sequence(%(table)s, 'id'), "  # noqa: S608
        "GREATEST(nextval(pg_get_serial_sequence(%(table)s, 'id')), "
        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {quoted})) + %(count)s - 1)"
    )
    ctx.cursor.execute(sql, {"table": table, "count": count})
    (last,) = ctx.cursor.fetchone()
    return last - count + 1


def copy_rows(
    *,
    ctx: SeedContext,
    model: type[Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    count_as: str,
) -> int:
    """Stream rows into the model's table with COPY FROM STDIN, counted as `count_as`.

    COPY bypasses Django's cursor wrapper, so the statement is added to the query log by
    hand, so that query-count tests and `connection.queries` see every statement.
    """
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    started = time.monotonic()
    written = 0
    with ctx.cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    copy_logged(sql=sql, written=written, started=started)
    ctx.counts[count_as] = ctx.counts.get(count_as, 0) + written
    return written


def copy_logged(*, sql: str, written: int, started: float) -> None:
    """Add a COPY to the query log, which psycopg's copy() bypasses (see `copy_rows`)."""
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {written} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


# NULL in COPY's text format, where a row is one line of tab-separated values.
COPY_NULL = "\\N"


class RowSpool:
    """Rows already in COPY text format, kept until their table's turn to be copied.

    One generator pass writes several tables, but one connection runs one COPY at a
    time: the rows of all tables but one wait here, in memory while small and in a
    temporary file beyond `max_memory` bytes, so millions of rows cost no Python objects.
    """

    def __init__(self, *, max_memory: int = 16 * 1024 * 1024) -> None:
        self._file: BinaryIO = tempfile.SpooledTemporaryFile(max_size=max_memory)  # noqa: SIM115
        self.rows = 0

    def write(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.rows += data.count(b"\n")
        self._file.write(data)

    def blocks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        self._file.seek(0)
        while block := self._file.read(size):
            yield block

    def close(self) -> None:
        self._file.close()


def copy_text(
    *,
    ctx: SeedContext,
    model: type[Model],
    columns: Sequence[str],
    blocks: Iterable[str | bytes],
    count_as: str,
) -> int:
    """Stream rows already in COPY text format (one row per line) into the model's table.

    The counterpart of `copy_rows` for rows formatted by the step itself, which is
    several times cheaper per row than adapting Python values one by one. Blocks may
    split rows anywhere: COPY reads one byte stream. Logged like `copy_rows`.
    """
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    started = time.monotonic()
    written = 0
    with ctx.cursor.cursor.copy(sql) as copy:
        for block in blocks:
            copy.write(block)
            written += block.count("\n" if isinstance(block, str) else b"\n")
    copy_logged(sql=sql, written=written, started=started)
    ctx.counts[count_as] = ctx.counts.get(count_as, 0) + written
    return written


# Run the deferred checks queued so far now, and defer the next ones again.
_PENDING_CHECKS_NOW = ("SET CONSTRAINTS ALL IMMEDIATE", "SET CONSTRAINTS ALL DEFERRED")


def foreign_keys_drop(
    *, ctx: SeedContext, models: Sequence[type[Model]], referenced: Sequence[type[Model]]
) -> list[str]:
    """Drop the foreign keys from `models` to `referenced`; return the statements that
    add them back, for `foreign_keys_restore`.

    Checked row by row, a foreign key costs a lookup and a row lock per inserted row at
    commit (they are deferred): minutes for the bench seed's ten million rows. Added
    back after the load, each is checked by one join over its whole table instead.
    Everything runs in the seed's transaction: if the seed fails, the rollback restores
    them too. Dropping takes an exclusive lock on both tables, held until the commit.

    Dropping a foreign key alters the referenced table, which PostgreSQL refuses while
    that table has deferred checks pending from earlier steps, so those run first.
    """
    tables = [model._meta.db_table for model in models]
    targets = [model._meta.db_table for model in referenced]
    ctx.cursor.execute(
        """
        SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s',
                      conrelid::regclass, conname, pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE contype = 'f'
          AND conrelid = ANY(%(tables)s::text[]::regclass[])
          AND confrelid = ANY(%(targets)s::text[]::regclass[])
        ORDER BY conrelid::regclass::text, conname
        """,
        {"tables": tables, "targets": targets},
    )
    statements = ctx.cursor.fetchall()
    if statements:
        # One round trip: the checks pending so far, then the drops.
        ctx.cursor.execute(";\n".join([*_PENDING_CHECKS_NOW, *(drop for drop, _ in statements)]))
    return [add for _, add in statements]


def foreign_keys_restore(*, ctx: SeedContext, statements: Sequence[str]) -> None:
    """Add back the foreign keys `foreign_keys_drop` took away, each checked in one pass."""
    if statements:
        ctx.cursor.execute(";\n".join([*_PENDING_CHECKS_NOW, *statements]))
