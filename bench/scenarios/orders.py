"""Order placement: POST /api/v1/orders/ at 1 and 16 clients, in two workloads.

- spread: random merchants of the city, 1 to 3 of their products, a delivery point in
  one of their active zones, quantities that reach that zone's minimum;
- hot: every client orders one unit of one product whose stock is set to `HOT_STOCK`, so
  once it is sold out the later orders are recorded as rejected (201, which is correct).

The same writes are sent as raw SQL through psycopg (one transaction per order) in the
same run. After every run the stock of each product touched must equal its stock before
the run less what the run's confirmed orders took, and no stock may be negative; then the
run's stock is given back and its orders deleted, so repeated runs neither drain stock nor
pile up orders. Any broken invariant is reported in `failures` and fails `make bench`.
"""

import contextlib
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types.json import Jsonb

from bench.common import ROOT
from bench.common import accounts as account_rows
from bench.common.accounts import Account
from bench.common.load import Request, http_scenario, merged, sql_scenario
from bench.common.processes import production_env, relay_paused
from bench.common.report import ErrorSamples, ratio
from bench.common.spots import OPEN_FOR_A_RUN, POINT_NEAR_MERCHANT, Item, Spot, spots_sql

CONCURRENCY = (1, 16)
DURATION = 8.0
# Each measurement is this many slices of DURATION / ROUNDS seconds, in turns with its
# baseline's.
ROUNDS = 4
BUYERS = 32
BUYER_PREFIX = "bench-buyer-"
BENCH_CITY = "Bench City"
POOL_MERCHANTS = 2000
MAX_LINES = 3
MIN_LINE_STOCK = 20
# A quarter of the least stock of a pool product: one picked a few times in a run stays in
# stock, so the spread workload mostly confirms.
MAX_QUANTITY = MIN_LINE_STOCK // 4
# Small enough that even the API sells it out within a run at 1 client, so every hot run
# has both confirmed and rejected orders.
HOT_STOCK = 100
# Share of requests sent with an Idempotency-Key, as a careful mobile client would.
IDEMPOTENT_SHARE = 0.5
CONFIRMATION_TASK = "orders.send_order_confirmation"
# The queue the web process publishes confirmations to (geomarket/celery.py).
BROKER_QUEUE = "geomarket"
SOLD_STATUSES_EXCLUDED = ("rejected", "cancelled")
RPS_TARGET = ">= 0.15"
# An order the API refuses in validation (#18): its delivery point this far north of a
# spot, outside every zone of the bench city's merchants.
REFUSED_NORTH_DEG = 5.0
REFUSED_P50_TARGET_MS = 3.0


class InvariantBroken(Exception):
    pass


@dataclass(frozen=True)
class PlannedOrder:
    buyer: Account
    spot: Spot
    lines: tuple[tuple[Item, int], ...]
    key: str | None

    def body(self) -> dict:
        return {
            "merchant_id": self.spot.merchant_id,
            "items": [{"product_id": item.product_id, "quantity": q} for item, q in self.lines],
            "delivery_address": {
                "line1": "1 Bench Street",
                "city": BENCH_CITY,
                "postal_code": "00000",
                "location": {"type": "Point", "coordinates": [self.spot.lng, self.spot.lat]},
            },
        }

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Token {self.buyer.token}"}
        if self.key:
            headers["Idempotency-Key"] = self.key
        return headers

    def request(self, *, expect: int = 201) -> Request:
        return Request(
            "/api/v1/orders/",
            method="POST",
            json=self.body(),
            headers=self.headers(),
            expect=expect,
        )


def bench_broker_url() -> str:
    """A Redis database of the bench's own, so no development worker runs its tasks.

    The bench server publishes a confirmation for every confirmed order; on the shared
    broker a development Celery worker would take them and look up those order ids in
    the development database.
    """
    if os.environ.get("BENCH_BROKER_URL"):
        return os.environ["BENCH_BROKER_URL"]
    from django.conf import settings

    return urlunsplit(urlsplit(settings.CELERY_BROKER_URL)._replace(path="/15"))


def broker_queue_purge(url: str) -> int:
    """Drop the confirmations the bench server published; no worker will run them."""
    import redis

    client = redis.Redis.from_url(url)
    keys = [BROKER_QUEUE.encode(), *client.scan_iter(match=f"{BROKER_QUEUE}\x06\x16*")]
    return client.delete(*keys)


# --- setup ---------------------------------------------------------------------------


def bench_buyers(dsn: str, count: int = BUYERS) -> list[Account]:
    """`count` customers with API tokens, created once and reused by every run."""
    names = account_rows.numbered(BUYER_PREFIX, count)
    with psycopg.connect(dsn) as connection:
        ids = account_rows.users(connection, names, last_name="Buyer")
        keys = account_rows.tokens(connection, ids.values())
        buyers = [Account(ids[name], keys[ids[name]]) for name in names]
        # A few dozen rows are below autovacuum's threshold: without fresh statistics the
        # planner takes authtoken_token for empty and looks every token up by merge-joining
        # all of accounts_user (3 ms instead of 0.05 ms a request).
        connection.execute("ANALYZE authtoken_token, accounts_user")
    return buyers


# A point near each of `n` random merchants.
SPOTS_SQL = spots_sql(
    f"SELECT m.id AS merchant_id, {POINT_NEAR_MERCHANT} AS point FROM ("
    f" SELECT id, location FROM merchants_merchant m WHERE is_active AND {OPEN_FOR_A_RUN}"
    " ORDER BY random()"
    " LIMIT %(n)s) m"
)

ITEMS_SQL = """
SELECT p.merchant_id, p.id, i.id, p.title, p.price
FROM catalog_product p JOIN inventory_inventory i ON i.product_id = p.id
WHERE p.merchant_id = ANY(%s) AND p.is_published AND p.price >= 1 AND i.quantity >= %s
ORDER BY p.id
"""


def city_spots(dsn: str, *, rng: random.Random, count: int = POOL_MERCHANTS) -> list[Spot]:
    """Random merchants with a delivery point each and the products they can sell."""
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT setseed(%s)", [rng.uniform(-1, 1)])
        spots = connection.execute(SPOTS_SQL, {"n": count}).fetchall()
        items: dict[int, list[Item]] = {}
        for merchant_id, product_id, inventory_id, title, price in connection.execute(
            ITEMS_SQL, [[row[0] for row in spots], MIN_LINE_STOCK]
        ):
            items.setdefault(merchant_id, []).append(Item(product_id, inventory_id, title, price))
    return [
        Spot(merchant_id, lat, lng, fee, min_order, tuple(items[merchant_id]))
        for merchant_id, lat, lng, fee, min_order in spots
        if len(items.get(merchant_id, ())) >= MAX_LINES
        # Its three dearest products reach the minimum within the quantity allowed a line.
        and sum(sorted(item.price for item in items[merchant_id])[-MAX_LINES:]) * MAX_QUANTITY
        >= min_order
    ]


def _lines_reaching(spot: Spot, rng: random.Random) -> tuple[tuple[Item, int], ...]:
    """1 to 3 products with one quantity for all, the least that reaches the minimum."""
    for attempt in range(20):
        chosen = rng.sample(spot.items, rng.randint(1, MAX_LINES))
        if attempt == 19:  # a merchant of cheap products: its dearest ones always do
            chosen = sorted(spot.items, key=lambda item: item.price)[-MAX_LINES:]
        quantity = max(1, math.ceil(spot.min_order / sum(item.price for item in chosen)))
        if quantity <= MAX_QUANTITY:
            break
    return tuple((item, quantity) for item in chosen)


def _key(rng: random.Random) -> str | None:
    return str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < IDEMPOTENT_SHARE else None


def spread_orders(spots: list[Spot], buyers: list[Account], rng: random.Random):
    while True:
        spot = rng.choice(spots)
        yield PlannedOrder(rng.choice(buyers), spot, _lines_reaching(spot, rng), _key(rng))


def hot_choice(spots: list[Spot], rng: random.Random) -> tuple[Spot, Item]:
    """A product whose single unit reaches the minimum of the zone it is delivered in."""
    candidates = [
        (spot, item) for spot in spots for item in spot.items if item.price >= spot.min_order
    ]
    if not candidates:
        raise InvariantBroken("no product in the pool costs its zone's minimum order")
    return rng.choice(candidates)


def hot_orders(spot: Spot, item: Item, buyers: list[Account], rng: random.Random):
    while True:
        yield PlannedOrder(rng.choice(buyers), spot, ((item, 1),), _key(rng))


# --- the raw SQL baseline ----------------------------------------------------------


class _Short(Exception):
    pass


def raw_order(connection, order: PlannedOrder) -> None:
    """The writes of one order by hand: take the stock line by line in inventory id order,
    or record a rejected order; then the address, order, items, history and outbox rows."""
    lines = sorted(order.lines, key=lambda line: line[0].inventory_id)
    subtotal = sum((item.price * q for item, q in lines), Decimal("0.00"))
    with connection.transaction(), connection.cursor() as cursor:
        claim = None
        if order.key:
            claim = cursor.execute(
                "INSERT INTO orders_idempotencykey (user_id, key, request_hash, created_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                [order.buyer.user_id, order.key, hashlib.sha256(order.key.encode()).hexdigest()],
            ).fetchone()
        shortages = []
        try:
            with connection.transaction():
                for item, quantity in lines:
                    cursor.execute(
                        "UPDATE inventory_inventory SET quantity = quantity - %s,"
                        " updated_at = now() WHERE product_id = %s AND quantity >= %s",
                        [quantity, item.product_id, quantity],
                    )
                    if cursor.rowcount != 1:
                        raise _Short(item, quantity)
        except _Short as short:
            item, quantity = short.args
            (available,) = cursor.execute(
                "SELECT quantity FROM inventory_inventory WHERE product_id = %s",
                [item.product_id],
            ).fetchone()
            shortages = [
                {"product_id": item.product_id, "requested": quantity, "available": available}
            ]
        status = "rejected" if shortages else "confirmed"
        (address_id,) = cursor.execute(
            "INSERT INTO merchants_address (line1, line2, city, postal_code, country, location)"
            " VALUES ('1 Bench Street', '', %s, '00000', '',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) RETURNING id",
            [BENCH_CITY, order.spot.lng, order.spot.lat],
        ).fetchone()
        (order_id,) = cursor.execute(
            "INSERT INTO orders_order (buyer_id, merchant_id, delivery_address_id, status,"
            " subtotal, delivery_fee, total, rejection_reason, shortages, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())"
            " RETURNING id",
            [
                order.buyer.user_id,
                order.spot.merchant_id,
                address_id,
                status,
                subtotal,
                order.spot.fee,
                subtotal + order.spot.fee,
                "insufficient_stock" if shortages else "",
                Jsonb(shortages),
            ],
        ).fetchone()
        cursor.execute(
            "INSERT INTO orders_orderitem (order_id, product_id, title, unit_price, quantity,"
            " line_total) SELECT %s, * FROM unnest(%s::bigint[], %s::text[], %s::numeric[],"
            " %s::integer[], %s::numeric[])",
            [
                order_id,
                [item.product_id for item, _ in lines],
                [item.title for item, _ in lines],
                [item.price for item, _ in lines],
                [q for _, q in lines],
                [item.price * q for item, q in lines],
            ],
        )
        cursor.execute(
            "INSERT INTO orders_orderstatuschange (order_id, from_status, to_status, actor_id,"
            " reason, created_at) VALUES (%s, '', %s, %s, '', now())",
            [order_id, status, order.buyer.user_id],
        )
        if status == "confirmed":
            cursor.execute(
                "INSERT INTO orders_outboxmessage (task_name, payload, created_at, attempts,"
                " last_error) VALUES (%s, %s, now(), 0, '')",
                [CONFIRMATION_TASK, Jsonb({"order_id": order_id})],
            )
        if claim is not None:
            cursor.execute(
                "UPDATE orders_idempotencykey SET order_id = %s WHERE id = %s",
                [order_id, claim[0]],
            )


# --- stock verification and clean-up -----------------------------------------------


def _stock(connection, product_ids) -> dict[int, int]:
    return dict(
        connection.execute(
            "SELECT product_id, quantity FROM inventory_inventory WHERE product_id = ANY(%s)",
            [list(product_ids)],
        ).fetchall()
    )


def _marks(connection) -> tuple[int, int]:
    return connection.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM orders_order),"
        " (SELECT coalesce(max(id), 0) FROM orders_outboxmessage)"
    ).fetchone()


@dataclass
class RunCheck:
    orders: int
    statuses: dict[str, int]
    oversells: int
    mismatches: list[str]
    negative_rows: int
    sold: dict[int, int]
    order_ids: list[int]


# The bench's orders: by its buyers, to its address, after a mark. Other orders of the
# bench database (seeded ones, say) are never counted, changed or deleted.
BENCH_ORDERS = (
    "orders_order o JOIN merchants_address a ON a.id = o.delivery_address_id"
    " AND o.id > %s AND o.buyer_id = ANY(%s) AND a.city = %s"
)


def check_run(connection, *, buyer_ids, mark: int, before: dict[int, int]) -> RunCheck:
    """Stock now == stock before - what this run's confirmed orders took, per product."""
    orders = connection.execute(
        f"SELECT o.id, o.status FROM {BENCH_ORDERS}", [mark, buyer_ids, BENCH_CITY]
    ).fetchall()
    sold = dict(
        connection.execute(
            f"SELECT i.product_id, sum(i.quantity) FROM {BENCH_ORDERS}"
            " JOIN orders_orderitem i ON i.order_id = o.id"
            " WHERE o.status <> ALL(%s) GROUP BY i.product_id",
            [mark, buyer_ids, BENCH_CITY, list(SOLD_STATUSES_EXCLUDED)],
        ).fetchall()
    )
    after = _stock(connection, set(before) | set(sold))
    mismatches = []
    oversells = 0
    for product_id in sorted(set(before) | set(sold)):
        taken = sold.get(product_id, 0)
        was = before.get(product_id)
        now = after.get(product_id)
        if was is None or now is None or now != was - taken:
            mismatches.append(f"product {product_id}: before {was}, sold {taken}, now {now}")
        if (was is not None and taken > was) or (now is not None and now < 0):
            oversells += 1
    (negative,) = connection.execute(
        "SELECT count(*) FROM inventory_inventory WHERE quantity < 0"
    ).fetchone()
    return RunCheck(
        orders=len(orders),
        statuses=dict(Counter(status for _, status in orders)),
        oversells=oversells,
        mismatches=mismatches,
        negative_rows=negative,
        sold={k: int(v) for k, v in sold.items()},
        order_ids=[order_id for order_id, _ in orders],
    )


def _tables_referencing_orders(connection) -> list[tuple[str, str]]:
    """Every (table, column) with a foreign key to orders_order, present and future."""
    return connection.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
        " WHERE c.contype = 'f' AND c.confrelid = 'orders_order'::regclass"
        " AND array_length(c.conkey, 1) = 1"
    ).fetchall()


def delete_orders(connection, *, order_ids: list[int], outbox_mark: int = 0) -> None:
    """Delete these orders and every row that belongs to them (one transaction)."""
    if not order_ids:
        return
    with connection.transaction():
        addresses = [
            row[0]
            for row in connection.execute(
                "SELECT delivery_address_id FROM orders_order WHERE id = ANY(%s)", [order_ids]
            )
        ]
        for table, column in _tables_referencing_orders(connection):
            connection.execute(
                f'DELETE FROM {table} WHERE "{column}" = ANY(%s)',  # names from the catalog
                [order_ids],
            )
        connection.execute(
            "DELETE FROM orders_outboxmessage WHERE id > %s AND task_name = %s"
            " AND (payload->>'order_id')::bigint = ANY(%s)",
            [outbox_mark, CONFIRMATION_TASK, order_ids],
        )
        connection.execute("DELETE FROM orders_order WHERE id = ANY(%s)", [order_ids])
        connection.execute("DELETE FROM merchants_address WHERE id = ANY(%s)", [addresses])


def give_back(connection, sold: dict[int, int]) -> None:
    """Return what the bench's confirmed orders took, as a cancellation would."""
    if sold:
        connection.execute(
            "UPDATE inventory_inventory AS i SET quantity = i.quantity + s.quantity"
            " FROM unnest(%s::bigint[], %s::integer[]) AS s(product_id, quantity)"
            " WHERE i.product_id = s.product_id",
            [list(sold), list(sold.values())],
        )


def remove_leftovers(connection, buyer_ids) -> int:
    """Orders of bench buyers left by an interrupted run: give their stock back, delete."""
    check = check_run(connection, buyer_ids=buyer_ids, mark=0, before={})
    with connection.transaction():
        give_back(connection, check.sold)
        delete_orders(connection, order_ids=check.order_ids)
    return check.orders


# --- queries per order -------------------------------------------------------------


def count_queries(*, database_url: str, server_env: dict, order: PlannedOrder) -> dict:
    """Queries of one POST /api/v1/orders/ with the bench server's settings, counted in a
    separate process against the bench database, inside a transaction rolled back."""
    env = production_env(database_url=database_url, **{"DATABASE_POOL": "false", **server_env})
    spec = {"token": order.buyer.token, "body": order.body()}
    result = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.orders", "count-queries"],
        cwd=ROOT,
        env=env,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _count_queries_main() -> None:
    """`python -m bench.scenarios.orders count-queries`: the child process of `count_queries`."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test import TestCase
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    import orders.apis

    spec = json.loads(sys.stdin.read())
    client = APIClient()
    place = orders.apis.order_place
    capture = CaptureQueriesContext(connection)
    spans = []

    def counted_place(**kwargs):
        start = len(capture.captured_queries)
        try:
            return place(**kwargs)
        finally:
            spans.append((start, len(capture.captured_queries)))

    orders.apis.order_place = counted_place
    result = {}
    for label, key in (("without_key", None), ("with_key", uuid.uuid4().hex)):
        spans.clear()
        headers = {"HTTP_AUTHORIZATION": f"Token {spec['token']}", "HTTP_HOST": "127.0.0.1"}
        if key:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        with transaction.atomic():
            with capture, TestCase.captureOnCommitCallbacks(execute=True):
                response = client.post("/api/v1/orders/", spec["body"], format="json", **headers)
                in_request = len(capture.captured_queries)
            transaction.set_rollback(True)
        if response.status_code != 201 or response.json()["status"] != "confirmed":
            raise SystemExit(f"count-queries: {response.status_code} {response.content[:300]}")
        start, end = spans[0]
        result[label] = {
            "request": in_request,
            "order_place": end - start,
            "after_commit": len(capture.captured_queries) - in_request,
            "sql": [query["sql"][:200] for query in capture.captured_queries],
        }
    orders.apis.order_place = place
    print(json.dumps(result))


# --- the scenario --------------------------------------------------------------------


def run(
    *, base_url: str, dsn: str, database_url: str, server_env: dict, rng: random.Random, log
) -> dict:
    """`server_env`: the bench server's settings; its `CELERY_BROKER_URL` is emptied after."""
    measurements = []
    results = {}
    checks = {}
    failures: list[str] = []
    errors = ErrorSamples()
    on_error = errors.on_error

    buyers = bench_buyers(dsn)
    buyer_ids = [buyer.user_id for buyer in buyers]
    connection = psycopg.connect(dsn, autocommit=True)
    leftovers = remove_leftovers(connection, buyer_ids)
    if leftovers:
        log(f"  removed {leftovers} orders left by an interrupted run")
    spots = city_spots(dsn, rng=rng)
    pool_products = {item.product_id for spot in spots for item in spot.items}
    hot_spot, hot_item = hot_choice(spots, rng)
    hot_original = _stock(connection, [hot_item.product_id])[hot_item.product_id]
    log(
        f"  {len(buyers)} buyers, {len(spots)} merchants, {len(pool_products)} products;"
        f" hot product {hot_item.product_id} ({hot_item.price}, stock set to {HOT_STOCK})"
    )

    def measured_run(name, workload, concurrency, *, api: bool, **options):
        # The baseline's outbox rows are deleted with its orders before the relay resumes.
        with contextlib.nullcontext() if api else relay_paused():
            return _measured_run(name, workload, concurrency, api=api, **options)

    def _measured_run(name, workload, concurrency, *, api: bool, duration=DURATION):
        products = pool_products if workload == "spread" else {hot_item.product_id}
        if workload == "hot":
            connection.execute(
                "UPDATE inventory_inventory SET quantity = %s WHERE product_id = %s",
                [HOT_STOCK, hot_item.product_id],
            )
        order_mark, outbox_mark = _marks(connection)
        before = _stock(connection, products)
        plans = (
            spread_orders(spots, buyers, rng)
            if workload == "spread"
            else hot_orders(hot_spot, hot_item, buyers, rng)
        )
        plan_lock = threading.Lock()

        def make_work():
            with plan_lock:
                order = next(plans)
            return lambda conn: raw_order(conn, order)

        if api:
            measurement = http_scenario(
                name=name,
                base_url=base_url,
                paths=(plan.request() for plan in plans),
                concurrency=concurrency,
                duration=duration,
                on_error=on_error,
            )
        else:
            measurement = sql_scenario(
                name=name,
                dsn=dsn,
                make_work=make_work,
                concurrency=concurrency,
                duration=duration,
                on_error=on_error,
            )
        check = check_run(connection, buyer_ids=buyer_ids, mark=order_mark, before=before)
        label = f"{name} c={concurrency}"
        problems = [f"{label}: {problem}" for problem in check.mismatches[:5]]
        if check.oversells:
            problems.append(f"{label}: {check.oversells} products oversold")
        if check.negative_rows:
            problems.append(f"{label}: {check.negative_rows} inventory rows below 0")
        if not measurement.requests <= check.orders <= measurement.requests + measurement.errors:
            problems.append(
                f"{label}: {check.orders} orders recorded for {measurement.requests} answered"
            )
        if workload == "hot":
            left = _stock(connection, [hot_item.product_id])[hot_item.product_id]
            if check.statuses.get("rejected") and left:
                problems.append(f"{label}: orders rejected while {left} units were in stock")
        if measurement.errors:
            problems.append(f"{label}: {measurement.errors} failed requests")
        failures.extend(problems)
        with connection.transaction():
            give_back(connection, check.sold)
            delete_orders(connection, order_ids=check.order_ids, outbox_mark=outbox_mark)
        return measurement, check

    def report(name, workload, concurrency, *, api, measurement, slices: list[RunCheck]):
        statuses: dict[str, int] = {}
        for check in slices:
            for status, count in check.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        oversells = sum(check.oversells for check in slices)
        shown = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        log(
            f"  {name:<34} c={concurrency:<2} p50 {measurement.p50_ms:7.2f}"
            f" ms  p95 {measurement.p95_ms:7.2f}  p99 {measurement.p99_ms:7.2f}"
            f"  {measurement.rps:8.1f} orders/s  errors {measurement.errors}"
            f"  ({shown or 'no orders'}; oversells: {oversells})"
        )
        measurements.append(measurement)
        checks[f"{workload}-{'api' if api else 'sql'}-c{concurrency}"] = {
            "orders": sum(check.orders for check in slices),
            "statuses": statuses,
            "oversells": oversells,
            "stock_mismatches": sum(len(check.mismatches) for check in slices),
            "negative_rows": sum(check.negative_rows for check in slices),
        }

    queries = None
    try:
        # Warm-up: connections, pools, the buffer cache; checked and cleaned like the rest.
        measured_run("warm-up", "spread", 4, api=True, duration=2)
        # The API and its baseline take turns, in slices checked and cleaned one by one, so
        # a drift in the machine's load falls on both alike. The hot product gets its
        # stock back before each slice.
        for workload in ("spread", "hot"):
            for concurrency in CONCURRENCY:
                slices = {True: [], False: []}
                for _ in range(ROUNDS):
                    for api in (True, False):
                        name = f"{'' if api else 'raw SQL '}orders ({workload})"
                        slices[api].append(
                            measured_run(
                                name, workload, concurrency, api=api, duration=DURATION / ROUNDS
                            )
                        )
                for api in (True, False):
                    measurement = merged([part for part, _ in slices[api]])
                    key = workload if api else f"{workload}-sql"
                    results[(key, concurrency)] = measurement
                    report(
                        measurement.name,
                        workload,
                        concurrency,
                        api=api,
                        measurement=measurement,
                        slices=[check for _, check in slices[api]],
                    )
        # An order refused in validation: the merchant does not deliver there (a 400,
        # after the one statement that reads the merchant, its zone and the products).
        refused = http_scenario(
            name="order refused in validation",
            base_url=base_url,
            paths=(
                replace(
                    plan,
                    key=None,
                    spot=replace(plan.spot, lat=plan.spot.lat + REFUSED_NORTH_DEG),
                ).request(expect=400)
                for plan in spread_orders(spots, buyers, rng)
            ),
            concurrency=1,
            duration=DURATION / 2,
            on_error=on_error,
        )
        results[("refused", 1)] = refused
        measurements.append(refused)
        log(
            f"  {refused.name:<34} c=1  p50 {refused.p50_ms:7.2f} ms  p95 {refused.p95_ms:7.2f}"
            f"  errors {refused.errors}"
        )
        if refused.errors:
            failures.append(f"order refused in validation: {refused.errors} unexpected answers")
        queries = count_queries(
            database_url=database_url,
            server_env=server_env,
            order=next(spread_orders(spots, buyers, rng)),
        )
    finally:
        # An interrupted run leaves its orders: their stock goes back first, then the hot
        # product gets its own stock back.
        leftovers = remove_leftovers(connection, buyer_ids)
        if leftovers:
            failures.append(f"{leftovers} bench orders were left after the runs")
        connection.execute(
            "UPDATE inventory_inventory SET quantity = %s WHERE product_id = %s",
            [hot_original, hot_item.product_id],
        )
        connection.close()
        broker_queue_purge(server_env["CELERY_BROKER_URL"])

    for label in ("without_key", "with_key"):
        counted = queries[label]
        log(
            f"  queries per order ({label.replace('_', ' ')}): {counted['request']} in the"
            f" request ({counted['order_place']} in order_place), then"
            f" {counted['after_commit']} after commit (outbox)"
        )
    oversells = sum(check["oversells"] for check in checks.values())
    log(f"  stock check: oversells: {oversells}; {'OK' if not failures else 'FAILED'}")
    for failure in failures:
        log(f"  FAILED: {failure}")
    for sample in errors.samples:
        log(f"  error sample: {sample}")

    ratios = {
        "orders_spread_rps_vs_sql_c16": {
            "value": ratio(results[("spread", 16)], results[("spread-sql", 16)], "rps"),
            "target": RPS_TARGET,
        },
        "orders_hot_rps_vs_sql_c16": {
            "value": ratio(results[("hot", 16)], results[("hot-sql", 16)], "rps"),
            "target": RPS_TARGET,
        },
        "orders_spread_p50_vs_sql_c1": {
            "value": ratio(results[("spread", 1)], results[("spread-sql", 1)], "p50_ms"),
            "target": None,
        },
        "order_refused_p50_ms_c1": {
            "value": results[("refused", 1)].p50_ms,
            "target": f"<= {REFUSED_P50_TARGET_MS:g}",
        },
    }
    return {
        "measurements": [m.as_dict() for m in measurements],
        "ratios": ratios,
        "checks": checks,
        "queries_per_order": {
            label: {k: v for k, v in counted.items() if k != "sql"}
            for label, counted in queries.items()
        },
        "failures": failures,
    }


if __name__ == "__main__" and sys.argv[1:] == ["count-queries"]:
    sys.path.insert(0, str(ROOT))
    _count_queries_main()
