"""The whole API: every GET route, as the role that would call it, on the bench city and
on the demo city, each beside the same SQL sent through psycopg.

The routes come from the URL conf (`get_routes`), not from a list kept here: a GET route
with no case in `CASES` is measured by an automatic case when its path parameters have
a pool (`KWARG_POOLS`; the role is the first of anonymous, customer, owner, courier,
operator that gets a 2xx), and reported as not covered otherwise. GETs of the contract
(`../shared/API.md`) that no route serves yet are listed as not served.

For each case:

1. The capture: a separate process serves the requests in-process, through the same
   ASGI application as the server (production settings, the city's database, so the
   event-loop lane's statements are captured as well as Django's), and records every
   statement psycopg sends for each request (`Cursor.execute` and `AsyncCursor.execute`,
   bound into literal SQL by psycopg's own client-side binding).
2. API and SQL p50/p95 at 1 client, in pairs (`_paired`): each captured request is sent
   once to the production server by a blocking keep-alive client (each is new to the
   server, so none is a cache hit), and right after its answer the capture process
   replays that request's statements, in order, on a plain psycopg connection with the
   same session settings (time zone, JIT), read-only, never prepared
   (`prepare_threshold=None`), fetching every row: SQL time of a request = the sum of its
   statements' times. Taken in turn, both figures meet the same load: served all at once
   and replayed all at once, a drift of the machine's load between the two passes moved
   the difference by as much as the 2 ms of the target.
3. API throughput at 8 clients for `BENCH_API_THROUGHPUT_SECONDS` (0.8), on fresh requests
   from the same generator (random points and prices: cached answers are mostly
   misses; the hit ratio is printed when there were hits). Skipped when the 1-client p50
   is over `BENCH_API_SLOW_MS` (250).

Each case takes requests for about `BENCH_API_SECONDS` (0.3 s; a tile case `HARD_SECONDS`)
of capture, at least `MIN_SAMPLES` and at most `MAX_SAMPLES` of them; fewer, down to one,
once they have taken `HARD_SECONDS`. A case whose first request takes over
`BENCH_API_MAX_REQUEST_SECONDS` (5) is that one request, timed in-process (`n` shows
`1*`), and is not sent to the server.

A case with fewer than `PAIRED_BELOW` captured requests (a report of hundreds of ms)
takes its pairs in turn over them again, up to `PAIRED_ROUNDS` pairs within
`PAIRED_SECONDS` (an answer from the server's cache counts for neither): two or three
samples taken seconds apart were the row's whole difference, the load drifting between
them by more than the target (the merchants report: 48 ms between 3 served and 3
replayed, none at all over 12 pairs).

The bench city is the server `make bench` started; the demo city is
`geomarket_bench_demo` (or `BENCH_DEMO_DATABASE_URL`, seeded with `seed_demo --preset
demo` when empty), served by a server of its own started here. Targets (issue 18): API
p50 - SQL p50 at 1 client on the bench city, <= 2 ms for a public GET and <= 4 ms for an
authenticated one; each bench-city row says PASS or MISS.

Alone, against `BENCH_DATABASE_URL` (created and seeded when missing):

    .venv/bin/python -m bench.scenarios.api
"""

import asyncio
import base64
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from urllib.parse import urlencode

import psycopg

from bench.common import ROOT, db, processes
from bench.common import accounts as account_rows
from bench.common.harness import run_alone
from bench.common.http1 import BlockingClient
from bench.common.load import Request, http_scenario, summarize
from bench.common.report import ErrorSamples
from bench.scenarios.search import SEARCH_TERMS, city_points

BUDGET_S = float(os.environ.get("BENCH_API_SECONDS", "0.3"))
HARD_SECONDS = 2.0
MIN_SAMPLES = 3
MAX_SAMPLES = 50
THROUGHPUT_S = float(os.environ.get("BENCH_API_THROUGHPUT_SECONDS", "0.8"))
THROUGHPUT_CLIENTS = 8
SLOW_MS = float(os.environ.get("BENCH_API_SLOW_MS", "250"))
# A case whose first request takes longer is not sent to the server at all: its time
# in-process stands for the API's, so that a report of many seconds costs the run its
# time twice (served, replayed), not five times.
MAX_REQUEST_S = float(os.environ.get("BENCH_API_MAX_REQUEST_SECONDS", "5"))
PAIRED_BELOW = 10
PAIRED_ROUNDS = int(os.environ.get("BENCH_API_PAIRED_ROUNDS", "7"))
PAIRED_SECONDS = 30.0
# Issue 18's targets for API p50 - SQL p50 at 1 client on the bench city, in ms.
PUBLIC_TARGET_MS = 2.0
AUTHENTICATED_TARGET_MS = 4.0
WORST = 5
RADIUS_M = 3000
CONTRACT = ROOT.parent / "shared" / "API.md"
# Suggest's per-client limit would turn the 8-client run into a test of 429s.
SERVER_ENV = {"SUGGEST_RATE_LIMIT_PER_MINUTE": "100000000"}

ANONYMOUS, CUSTOMER, OWNER, COURIER, OPERATOR_ROLE = (
    "anonymous",
    "customer",
    "owner",
    "courier",
    "operator",
)
ROLES = (ANONYMOUS, CUSTOMER, OWNER, COURIER, OPERATOR_ROLE)
# The seeded demo accounts, in both cities (README, "Demo data"); the operator is the
# bench's own, as in the analytics scenario.
DEMO_USERS = {CUSTOMER: "demo-customer", OWNER: "demo-owner", COURIER: "demo-courier"}


# --- the routes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    # The URL conf's pattern, with a leading slash: "/api/v1/merchants/<int:merchant_id>/".
    pattern: str

    @property
    def kwargs(self) -> tuple[str, ...]:
        return tuple(re.findall(r"<(?:\w+:)?(\w+)>", self.pattern))

    @property
    def template(self) -> str:
        """The pattern as the contract writes paths: "/api/v1/merchants/{}/"."""
        return re.sub(r"<[^>]+>", "{}", self.pattern)


# Function views declare no methods; the ones that answer no GET, and why.
NO_GET_FUNCTION_VIEWS = {"delivery-eta": "POST only"}


def answers_get(callback, name: str | None) -> bool:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is not None:
        return "get" in view.http_method_names and hasattr(view, "get")
    return name not in NO_GET_FUNCTION_VIEWS


def get_routes(*, answering_get: bool = True) -> list[Route]:
    """Every GET route of the URL conf (every route, with `answering_get=False`), in its
    order, but the Django admin's (HTML pages for operators, no part of the API)."""
    from django.urls import URLResolver, get_resolver

    routes: list[Route] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.app_name != "admin":
                    walk(entry.url_patterns, prefix + str(entry.pattern))
            elif not answering_get or answers_get(entry.callback, entry.name):
                pattern = "/" + prefix + str(entry.pattern)
                routes.append(Route(entry.name or pattern, pattern))

    walk(get_resolver().url_patterns, "")
    return routes


_CONTRACT_PATH = re.compile(
    r"((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*) `([^`]+)`"
)


def contract_gets(text: str) -> list[str]:
    """The paths the contract's tables give GET for, as templates ("/api/v1/orders/{}/")."""
    paths = []
    for methods, path in _CONTRACT_PATH.findall(text):
        if "GET" in methods.split("/"):
            template = re.sub(r"\{[^}]+\}", "{}", path.split("?")[0])
            if template not in paths:
                paths.append(template)
    return paths


def not_served(routes: list[Route], contract_text: str | None) -> list[str]:
    """The contract's GETs no route serves yet."""
    if contract_text is None:
        return []
    served = {route.template for route in routes}
    return [path for path in contract_gets(contract_text) if path not in served]


# --- the cities ----------------------------------------------------------------------


@dataclass
class City:
    name: str
    headers: dict[str, dict[str, str]]
    owner_merchant: int
    owner_zones: list[int]
    owner_products: list[int]
    owner_inventory: list[int]
    customer_orders: list[int]
    courier_id: int
    merchants: list[int]
    products: list[int]
    categories: list[int]
    couriers: list[int]
    waiting_orders: list[int]
    owner_webhooks: list[int]
    points: list[tuple[float, float]]
    prefixes: list[str]

    def point(self, rng: random.Random) -> dict:
        """A point near a random merchant of the city, new every time: no cached answer."""
        lat, lng = rng.choice(self.points)
        lat, lng = lat + rng.uniform(-0.002, 0.002), lng + rng.uniform(-0.003, 0.003)
        return {"lat": f"{lat:.6f}", "lng": f"{lng:.6f}"}


def _column(connection, sql: str, params=()) -> list:
    return [row[0] for row in connection.execute(sql, params).fetchall()]


def _owner_webhooks(connection, merchant_id: int) -> list[int]:
    """The owner's webhook endpoints; one made when there is none, inactive, so that no
    delivery is ever sent to it."""
    found = _column(
        connection, "SELECT id FROM events_webhookendpoint WHERE merchant_id = %s", [merchant_id]
    )
    return found or _column(
        connection,
        "INSERT INTO events_webhookendpoint"
        " (merchant_id, url, event_types, secret, is_active, failure_count, created_at)"
        " VALUES (%s, 'https://hooks.example.com/bench', '{}', %s, false, 0, now()) RETURNING id",
        [merchant_id, "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()],
    )


def load_city(name: str, dsn: str, *, rng: random.Random) -> City:
    """The accounts (with API tokens) and the pools of ids the cases draw from."""
    from bench.scenarios.analytics import operator_token

    with psycopg.connect(dsn, autocommit=True) as connection:
        users = dict(
            connection.execute(
                "SELECT username, id FROM accounts_user WHERE username = ANY(%s)",
                [list(DEMO_USERS.values())],
            ).fetchall()
        )
        missing = sorted(set(DEMO_USERS.values()) - set(users))
        if missing:
            raise SystemExit(f"the {name} city has no {', '.join(missing)} (seed_demo makes them)")
        ids = {role: users[username] for role, username in DEMO_USERS.items()}
        tokens = account_rows.tokens(connection, ids.values())
        headers = {role: {"Authorization": f"Token {tokens[ids[role]]}"} for role in DEMO_USERS}
        headers[OPERATOR_ROLE] = {"Authorization": f"Token {operator_token(connection)}"}
        headers[ANONYMOUS] = {}
        owner_merchant = _column(
            connection,
            "SELECT id FROM merchants_merchant WHERE owner_id = %s ORDER BY id LIMIT 1",
            [ids[OWNER]],
        )[0]
        sample = "ORDER BY random() LIMIT 300"
        titles = _column(
            connection, f"SELECT title FROM catalog_product WHERE is_published {sample}"
        )
        waiting = _column(
            connection,
            "SELECT id FROM orders_order WHERE status IN ('confirmed', 'preparing', 'ready')"
            f" AND courier_id IS NULL {sample}",
        )
        city = City(
            name=name,
            headers=headers,
            owner_merchant=owner_merchant,
            owner_zones=_column(
                connection,
                "SELECT id FROM merchants_deliveryzone WHERE merchant_id = %s",
                [owner_merchant],
            ),
            owner_products=_column(
                connection,
                f"SELECT id FROM catalog_product WHERE merchant_id = %s {sample}",
                [owner_merchant],
            ),
            owner_inventory=_column(
                connection,
                f"SELECT id FROM inventory_inventory WHERE merchant_id = %s {sample}",
                [owner_merchant],
            ),
            customer_orders=_column(
                connection,
                f"SELECT id FROM orders_order WHERE buyer_id = %s {sample}",
                [ids[CUSTOMER]],
            ),
            courier_id=_column(
                connection, "SELECT id FROM delivery_courier WHERE user_id = %s", [ids[COURIER]]
            )[0],
            merchants=_column(
                connection, f"SELECT id FROM merchants_merchant WHERE is_active {sample}"
            ),
            products=_column(
                connection,
                "SELECT p.id FROM catalog_product p JOIN merchants_merchant m"
                f" ON m.id = p.merchant_id WHERE p.is_published AND m.is_active {sample}",
            ),
            categories=_column(connection, "SELECT id FROM catalog_productcategory"),
            couriers=_column(connection, f"SELECT id FROM delivery_courier {sample}"),
            waiting_orders=waiting
            or _column(
                connection, f"SELECT id FROM orders_order WHERE status <> 'rejected' {sample}"
            ),
            owner_webhooks=_owner_webhooks(connection, owner_merchant),
            points=city_points(dsn, rng=rng, count=2000),
            prefixes=_prefixes(titles, rng),
        )
    return city


def _prefixes(titles: list[str], rng: random.Random) -> list[str]:
    """What people type into suggest: the first 3 to 6 letters of a word of a title."""
    words = {word.lower() for title in titles for word in title.split() if len(word) >= 4}
    return sorted({word[: rng.randint(3, min(6, len(word)))] for word in words}) or ["bre"]


# --- the cases -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    route: str
    # None: the first role that gets a 2xx (automatic cases).
    role: str | None
    make: Callable[[City, random.Random], str]
    auto: bool = False
    # Tells apart cases of one route (the two tile layers).
    variant: str = ""
    # Seconds of capture for this case, when `BUDGET_S` is too few requests to read its
    # p50 from: requests whose cost varies widely with what they draw.
    budget_s: float | None = None
    # Each drawn path once, for a case whose draws repeat (the few tiles a city spans at
    # zoom 12): a repeated path would be answered from the cache.
    distinct: bool = False

    @property
    def name(self) -> str:
        return f"{self.route}-{self.variant}" if self.variant else self.route

    def label(self, role: str | None = None) -> str:
        return f"{self.name} ({role or self.role})"


def path(route: str, query: dict | None = None, **kwargs) -> str:
    from django.urls import reverse

    url = reverse(route, kwargs=kwargs or None)
    return url + ("?" + urlencode(query) if query else "")


Draw = Callable[[City, random.Random], object]


def case(route: str, role: str | None, query: Draw | None = None, **kwargs: Draw) -> Case:
    """GET `route`: its query string and each path parameter drawn from the city."""

    def make(city: City, rng: random.Random) -> str:
        drawn = {name: draw(city, rng) for name, draw in kwargs.items()}
        return path(route, query(city, rng) if query else None, **drawn)

    return Case(route, role, make)


TILE_LAYERS = ("merchants", "zones")
# Issue 22: a z12-z14 tile of the bench city at p50 <= 20 ms uncached.
TILE_TARGET_MS = 20.0


def tile_case(layer: str) -> Case:
    """A tile of `layer` at zoom 12 to 14 around one of the city's points."""

    def make(city: City, rng: random.Random) -> str:
        # Not at import: the capture process imports this module before Django is set up.
        from merchants.tiles import tile_of

        point, z = city.point(rng), rng.randint(12, 14)
        x, y = tile_of(lat=float(point["lat"]), lng=float(point["lng"]), z=z)
        return path("tile", layer=layer, z=z, x=x, y=y)

    # A z12 tile of the bench city holds some thousands of zones and a z14 one a few
    # hundred: over the 7 or so tiles of `BUDGET_S`, the p50 swung between 20 and 39 ms
    # from run to run.
    return Case("tile", ANONYMOUS, make, variant=layer, budget_s=HARD_SECONDS, distinct=True)


def _merchant(c: City, r: random.Random) -> int:
    return r.choice(c.merchants)


def _owner_merchant(c: City, r: random.Random) -> int:
    return c.owner_merchant


# Path parameters the demo owner, customer and courier have: for the written cases and
# for automatic ones.
KWARG_POOLS: dict[str, Draw] = {
    "merchant_id": _owner_merchant,
    "zone_id": lambda c, r: r.choice(c.owner_zones),
    "product_id": lambda c, r: r.choice(c.owner_products),
    "inventory_id": lambda c, r: r.choice(c.owner_inventory),
    "category_id": lambda c, r: r.choice(c.categories),
    "order_id": lambda c, r: r.choice(c.customer_orders),
    "courier_id": lambda c, r: c.courier_id,
    "webhook_id": lambda c, r: r.choice(c.owner_webhooks),
}

CASES: list[Case] = [
    case("home", ANONYMOUS),
    case("healthz", ANONYMOUS),
    case("schema", ANONYMOUS),
    case("docs", ANONYMOUS),
    case("auth-me", CUSTOMER),
    case("merchant-list", ANONYMOUS),
    case("merchants-nearby", ANONYMOUS, lambda c, r: {**c.point(r), "radius": RADIUS_M}),
    case("merchants-delivering-to", ANONYMOUS, lambda c, r: c.point(r)),
    case("merchant-detail", ANONYMOUS, merchant_id=_merchant),
    *(tile_case(layer) for layer in TILE_LAYERS),
    # The demo owner's merchant delivers in slots (seed_demo); tomorrow is within its
    # horizon and past its lead time.
    case(
        "merchant-slots",
        ANONYMOUS,
        lambda c, r: {"date": (datetime.now(UTC) + timedelta(days=1)).date().isoformat()},
        merchant_id=_owner_merchant,
    ),
    case("delivery-zone-list", ANONYMOUS, merchant_id=_merchant),
    case(
        "delivery-zone-detail", OWNER, merchant_id=_owner_merchant, zone_id=KWARG_POOLS["zone_id"]
    ),
    case("category-list", ANONYMOUS),
    case("category-detail", ANONYMOUS, category_id=KWARG_POOLS["category_id"]),
    case("product-list", ANONYMOUS, lambda c, r: {"merchant_id": _merchant(c, r)}),
    case(
        "products-nearby",
        ANONYMOUS,
        lambda c, r: {**c.point(r), "radius": RADIUS_M, "limit": 20},
    ),
    case("product-detail", ANONYMOUS, product_id=lambda c, r: r.choice(c.products)),
    # A price limit in cents makes every request new: no cached answer.
    case(
        "search-products",
        ANONYMOUS,
        lambda c, r: {"q": r.choice(SEARCH_TERMS), "max_price": f"{r.uniform(5, 50):.2f}"},
    ),
    case("search-suggest", ANONYMOUS, lambda c, r: {"q": r.choice(c.prefixes)}),
    case("merchant-inventory", OWNER, merchant_id=_owner_merchant),
    case("inventory-list", OWNER),
    case("inventory-detail", OWNER, inventory_id=KWARG_POOLS["inventory_id"]),
    case("merchant-orders", OWNER, merchant_id=_owner_merchant),
    *(case("order-list", role) for role in (CUSTOMER, OWNER, COURIER, OPERATOR_ROLE)),
    case("order-stats", OWNER),
    case("order-stats", OPERATOR_ROLE),
    case("order-detail", CUSTOMER, order_id=KWARG_POOLS["order_id"]),
    case("courier-candidates", OPERATOR_ROLE, order_id=lambda c, r: r.choice(c.waiting_orders)),
    case("courier-list", OPERATOR_ROLE),
    case("courier-me", COURIER),
    case("courier-orders", COURIER),
    case("courier-detail", OPERATOR_ROLE, courier_id=lambda c, r: r.choice(c.couriers)),
    # The operators' dashboard: each report over its default range, every merchant.
    case("orders-analytics", OPERATOR_ROLE),
    case("analytics-top-products", OPERATOR_ROLE),
    case("analytics-revenue", OPERATOR_ROLE),
    case("analytics-merchants", OPERATOR_ROLE),
]


def auto_case(route: Route) -> Case | None:
    """A case for a route `CASES` does not name, when every path parameter has a pool;
    its role is found by asking (`_probe_role`)."""
    if any(name not in KWARG_POOLS for name in route.kwargs):
        return None
    written = case(route.name, None, **{name: KWARG_POOLS[name] for name in route.kwargs})
    return Case(written.route, None, written.make, auto=True)


# GET routes whose answer never ends, measured by another scenario instead, and where.
MEASURED_ELSEWHERE = {
    "order-stream": "Server-Sent Events: the dispatch scenario holds 1,000 open and measures "
    "their memory and the tracking p50 beside them",
    "console": "a browser page behind a session sign-in, not an API: tests/browser",
    "console-data": "the console's own data, behind its session sign-in: tests/browser",
    "console-courier-stream": "Server-Sent Events behind the console's session sign-in: "
    "tests/console/test_courier_stream.py and tests/browser",
}


def plan(routes: list[Route]) -> tuple[list[Case], list[Route]]:
    """The cases for `routes` (the explicit ones, then automatic ones) and the routes left
    with none."""
    named = {case.route for case in CASES}
    cases = [case for case in CASES if case.route in {route.name for route in routes}]
    uncovered = []
    for route in routes:
        if route.name in named or route.name in MEASURED_ELSEWHERE:
            continue
        case = auto_case(route)
        if case is None:
            uncovered.append(route)
        else:
            cases.append(case)
    return cases, uncovered


# --- capturing and replaying the SQL (child process) --------------------------------


class Capturer:
    """A separate process serving requests in-process and replaying their SQL: see the
    module's docstring. One JSON line in, one out, per case."""

    def __init__(self, *, dsn: str, server_env: dict):
        env = processes.production_env(database_url=dsn, **server_env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.scenarios.api", "capture"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, *, warm: dict, requests: list[dict], budget_s: float = BUDGET_S) -> dict:
        spec = {"warm": warm, "requests": requests, "budget": budget_s}
        self.process.stdin.write(json.dumps(spec) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the SQL capture process ended")
        return json.loads(line)

    def replay(self, index: int) -> dict:
        """`{"seconds": ...}` the SQL of the last case's request `index` (as captured)
        takes now, or `{"error": ...}` when it fails."""
        self.process.stdin.write(json.dumps({"replay": index}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("the SQL capture process ended")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


_recording: list | None = None
SETTINGS_SQL = "SELECT current_setting('TimeZone'), current_setting('jit')"
# The session settings a statement's time depends on, and how the replay sets them.
SET_SETTINGS_SQL = "SELECT set_config('TimeZone', %s, false), set_config('jit', %s, false)"


def _install_recorder() -> Callable[[], None]:
    """Every statement psycopg sends while a request is recorded, appended to
    `_recording` bound into literal SQL, with its connection's session settings just
    before it (read on the same connection, untimed). Returns what uninstalls it."""
    cursor_execute = psycopg.Cursor.execute
    async_execute = psycopg.AsyncCursor.execute

    def record(client_cursor, query, params, settings) -> None:
        try:
            sql = client_cursor.mogrify(query, params)
        except Exception as exc:  # reported in the row, never raised into the app
            _recording.append({"error": repr(exc)[:300]})
            return
        _recording.append({"sql": sql, "settings": settings})

    def execute(self, query, params=None, **kwargs):
        if _recording is not None:
            settings = None
            with suppress(psycopg.Error):
                cursor = cursor_execute(psycopg.Cursor(self.connection), SETTINGS_SQL)
                settings = cursor.fetchone()
            record(psycopg.ClientCursor(self.connection), query, params, settings)
        return cursor_execute(self, query, params, **kwargs)

    async def execute_async(self, query, params=None, **kwargs):
        if _recording is not None:
            settings = None
            with suppress(psycopg.Error):
                cursor = await async_execute(psycopg.AsyncCursor(self.connection), SETTINGS_SQL)
                settings = await cursor.fetchone()
            record(psycopg.AsyncClientCursor(self.connection), query, params, settings)
        return await async_execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute
    psycopg.AsyncCursor.execute = execute_async

    def uninstall() -> None:
        psycopg.Cursor.execute = cursor_execute
        psycopg.AsyncCursor.execute = async_execute

    return uninstall


class Replayer:
    """A plain psycopg connection, read-only, never preparing a statement; before each
    statement (untimed) the session settings it ran with. It goes to PostgreSQL itself,
    past a transaction pooler: its session settings would stay on the pooler's server
    connection and reach the next client lent it (a test's writes, refused as read-only)."""

    def __init__(self):
        from geomarket.db.direct import direct_connection_params

        params = {**direct_connection_params(), "autocommit": True, "prepare_threshold": None}
        self.connection = psycopg.connect(**params)
        self.connection.execute("SET default_transaction_read_only = on")

    def close(self) -> None:
        self.connection.close()

    def time(self, statements: list[dict]) -> float:
        """Seconds the statements of one request take, one after another."""
        total = 0.0
        cursor = self.connection.cursor()
        for statement in statements:
            if statement["settings"]:
                cursor.execute(SET_SETTINGS_SQL, statement["settings"])
            started = time.perf_counter()
            cursor.execute(statement["sql"])
            if cursor.description is not None:
                cursor.fetchall()
            total += time.perf_counter() - started
        return total


def _capture_main() -> None:
    """`python -m bench.scenarios.api capture`: the child process of `Capturer`."""
    # Protocol lines only on the real stdout; anything the app prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import httpx

    from geomarket.asgi import application

    _install_recorder()
    replayer = Replayer()
    loop = asyncio.new_event_loop()
    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    def get(request: dict) -> int:
        """The status, or 599 when the application raised (told on stderr)."""
        try:
            call = client.get(request["path"], headers=request["headers"])
            return loop.run_until_complete(call).status_code
        except Exception as exc:  # the row reports it; the next case still runs
            print(f"{request['path']}: {exc!r}", file=sys.stderr)
            return 599

    def recorded(request: dict) -> dict:
        global _recording
        _recording = []
        started = time.perf_counter()
        status = get(request)
        seconds = time.perf_counter() - started
        statements, _recording = _recording, None
        return {"status": status, "statements": statements, "seconds": seconds}

    captured: list[dict] = []
    for line in sys.stdin:
        spec = json.loads(line)
        if "replay" in spec:
            try:
                answer = {"seconds": replayer.time(captured[spec["replay"]]["statements"])}
            except psycopg.Error as exc:
                answer = {"error": f"replay: {exc!r}"[:300]}
            protocol.write(json.dumps(answer) + "\n")
            protocol.flush()
            continue
        warm = recorded(spec["warm"])
        in_process = warm["seconds"] > MAX_REQUEST_S
        captured = [warm] if in_process else []
        started = time.perf_counter()
        for request in [] if in_process else spec["requests"]:
            elapsed = time.perf_counter() - started
            if captured and (
                (len(captured) >= MIN_SAMPLES and elapsed >= spec["budget"])
                or elapsed >= HARD_SECONDS
            ):
                break
            captured.append(recorded(request))
        result = {
            "in_process": in_process,
            "seconds": [entry["seconds"] for entry in captured],
            "count": len(captured),
            "statuses": [entry["status"] for entry in captured],
            "statements": [len(entry["statements"]) for entry in captured],
            "example": [s.get("sql", s.get("error", ""))[:500] for s in captured[0]["statements"]],
            "sql_s": [],
            "errors": [s["error"] for e in captured for s in e["statements"] if "error" in s][:3],
        }
        if in_process and not result["errors"]:
            # Not served: its replays are timed here (the others', in turn with their
            # served requests: `_paired`). Every request once, then more rounds while
            # they are cheap.
            started = time.perf_counter()
            for round_ in count():
                for entry in captured:
                    try:
                        result["sql_s"].append(replayer.time(entry["statements"]))
                    except psycopg.Error as exc:
                        result["errors"].append(f"replay: {exc!r}"[:300])
                        break
                if (
                    result["errors"]
                    or len(result["sql_s"]) >= MAX_SAMPLES
                    or time.perf_counter() - started >= spec["budget"]
                    or round_ >= 4
                ):
                    break
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()


# --- measuring -----------------------------------------------------------------------


@dataclass
class Row:
    city: str
    route: str
    role: str
    auto: bool
    samples: int
    statements: float
    api_p50: float
    api_p95: float
    sql_p50: float
    rps8: float | None
    hit_ratio8: float | None
    errors: int
    example: list[str]
    # The API's figures are the in-process time of the one request captured.
    in_process: bool = False

    @property
    def public(self) -> bool:
        return self.role == ANONYMOUS

    @property
    def diff(self) -> float:
        return round(self.api_p50 - self.sql_p50, 3)

    @property
    def target(self) -> float:
        return PUBLIC_TARGET_MS if self.public else AUTHENTICATED_TARGET_MS

    @property
    def verdict(self) -> str:
        """PASS or MISS on the bench city, where the targets hold; "-" elsewhere."""
        if self.city != "bench" or self.sql_p50 != self.sql_p50:
            return "-"
        return "PASS" if self.diff <= self.target else "MISS"

    def as_dict(self) -> dict:
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "diff": self.diff,
            "target_ms": self.target,
            "verdict": self.verdict,
        }


def _probe_role(base_url: str, city: City, case: Case, rng: random.Random) -> str | None:
    """The first role, least privileged first, that the route answers with a 2xx."""
    target = case.make(city, rng)
    for role in ROLES:
        with BlockingClient(base_url, headers=city.headers[role]) as client:
            if 200 <= client.get(target).status_code < 300:
                return role
    return None


def measure_case(
    *, base_url: str, city: City, case: Case, capturer: Capturer, rng: random.Random, log
) -> tuple[Row | None, list[str]]:
    """The case's row (None when no role gets an answer) and its failures."""
    role = case.role or _probe_role(base_url, city, case, rng)
    if role is None:
        return None, [f"{city.name}: {case.route}: no role gets a 2xx"]
    headers = city.headers[role]
    paths = [case.make(city, rng) for _ in range(MAX_SAMPLES + 1)]
    if case.distinct and len(set(paths)) > MIN_SAMPLES:
        paths = list(dict.fromkeys(paths))
    captured = capturer.run(
        warm={"path": paths[0], "headers": headers},
        requests=[{"path": p, "headers": headers} for p in paths[1:]],
        budget_s=case.budget_s or BUDGET_S,
    )
    failures = [
        f"{city.name}: {case.label(role)}: capture answered {status}"
        for status in captured["statuses"]
        if not 200 <= status < 300
    ][:1]
    failures += [f"{city.name}: {case.label(role)}: {error}" for error in captured["errors"]]
    in_process = captured["in_process"]
    measured = [] if in_process else paths[1 : 1 + captured["count"]]
    latencies, sql_s = (captured["seconds"], captured["sql_s"]) if in_process else ([], [])
    errors = 0
    if measured:
        paired = _paired(base_url, headers, measured, capturer, replay=not captured["errors"])
        latencies, sql_s, errors = paired.served, paired.replayed, len(paired.refused)
        failures += [f"{city.name}: {case.label(role)}: {line}" for line in paired.refused[:2]]
        if paired.replay_error is not None:
            failures.append(f"{city.name}: {case.label(role)}: {paired.replay_error}")
            sql_s = []
    api = summarize(case.label(role), 1, latencies, errors, sum(latencies))
    sql = summarize(f"SQL {case.label(role)}", 1, sql_s, 0, sum(sql_s))
    rps8 = hit_ratio8 = None
    if api.p50_ms <= SLOW_MS:
        samples = ErrorSamples(limit=2)
        fresh = (Request(case.make(city, rng), headers=headers) for _ in count())
        load = http_scenario(
            name=case.label(role),
            base_url=base_url,
            paths=fresh,
            concurrency=THROUGHPUT_CLIENTS,
            duration=THROUGHPUT_S,
            on_error=samples.on_error,
        )
        rps8, hit_ratio8 = load.rps, load.cache_hit_ratio
        errors += load.errors
        failures += [f"{city.name}: {message}" for message in samples.samples]
    statements = captured["statements"]
    row = Row(
        city=city.name,
        route=case.name,
        role=role,
        auto=case.auto,
        samples=api.requests,
        statements=round(sum(statements) / len(statements), 1) if statements else 0.0,
        api_p50=api.p50_ms,
        api_p95=api.p95_ms,
        sql_p50=sql.p50_ms,
        rps8=rps8,
        hit_ratio8=hit_ratio8,
        errors=errors,
        example=captured["example"],
        in_process=in_process,
    )
    log("  " + format_row(row))
    return row, failures


@dataclass
class Paired:
    served: list[float]
    replayed: list[float]
    # The status and start of each answer that was not a 2xx.
    refused: list[str]
    # Why the SQL could not be replayed, which stops the replays.
    replay_error: str | None = None


def _paired(
    base_url: str, headers: dict, paths: list[str], capturer: Capturer, *, replay: bool = True
) -> Paired:
    """Seconds of served requests and of their SQL's replays, taken in turn (see the
    module's docstring): each of the captured `paths` once, and for fewer than
    `PAIRED_BELOW` of them, again in turn up to `PAIRED_ROUNDS` pairs. A repeated
    request that the server answered from its cache counts for neither."""
    rounds = len(paths) if len(paths) >= PAIRED_BELOW else max(len(paths), PAIRED_ROUNDS)
    paired = Paired([], [], [])
    started = time.perf_counter()
    with BlockingClient(base_url, headers=headers) as client:
        # The connection is opened, and the server's first answer given, untimed.
        client.get(paths[0])
        for round_ in range(rounds):
            if round_ >= len(paths) and time.perf_counter() - started >= PAIRED_SECONDS:
                break
            index = round_ % len(paths)
            began = time.perf_counter()
            response = client.get(paths[index])
            elapsed = time.perf_counter() - began
            if not 200 <= response.status_code < 300:
                paired.refused.append(f"{response.status_code} {response.text[:200]}")
                continue
            if round_ >= len(paths) and response.headers.get("x-cache") == "HIT":
                continue
            paired.served.append(elapsed)
            if replay and paired.replay_error is None:
                replayed = capturer.replay(index)
                if "error" in replayed:
                    paired.replay_error = replayed["error"]
                else:
                    paired.replayed.append(replayed["seconds"])
    return paired


def format_row(row: Row) -> str:
    if row.rps8 is None:
        throughput = f"{'(slow)':>8}"
    else:
        throughput = f"{row.rps8:8.1f}"
        if row.hit_ratio8:
            throughput += f" ({row.hit_ratio8:.0%} hits)"
    name = f"{row.route} ({row.role}{', auto' if row.auto else ''})"
    samples = f"{row.samples}{'*' if row.in_process else ''}"
    return (
        f"{row.city:<5} {name:<44} {samples:>3} {row.api_p50:8.2f} {row.api_p95:8.2f}"
        f" {row.sql_p50:8.2f} {row.statements:5.1f} {row.diff:8.2f} {throughput}"
        f"  {row.verdict}"
    )


HEADER = (
    f"{'city':<5} {'route (role)':<44} {'n':>3} {'API p50':>8} {'API p95':>8}"
    f" {'SQL p50':>8} {'stmts':>5} {'API-SQL':>8} {'c8 req/s':>8}  target"
)


def run_city(
    *, base_url: str, dsn: str, city_name: str, cases: list[Case], server_env: dict, rng, log
) -> tuple[list[Row], list[str]]:
    city = load_city(city_name, dsn, rng=rng)
    rows, failures = [], []
    capturer = Capturer(dsn=dsn, server_env=server_env)
    try:
        for case in cases:
            row, case_failures = measure_case(
                base_url=base_url, city=city, case=case, capturer=capturer, rng=rng, log=log
            )
            rows += [row] if row is not None else []
            failures += case_failures
    finally:
        capturer.close()
    return rows, failures


def report(rows: list[Row], log) -> None:
    for city in ("bench", "demo"):
        city_rows = [row for row in rows if row.city == city]
        if not city_rows:
            continue
        log(f"  {city} city, the {WORST} largest API p50 - SQL p50 (ms):")
        for row in sorted(city_rows, key=lambda r: r.diff, reverse=True)[:WORST]:
            log("    " + format_row(row))
        log(f"  {city} city, the {WORST} slowest API p50 (ms):")
        for row in sorted(city_rows, key=lambda r: r.api_p50, reverse=True)[:WORST]:
            log("    " + format_row(row))


def ratios_of(rows: list[Row]) -> dict:
    bench = [row for row in rows if row.city == "bench"]
    public = [row.diff for row in bench if row.public]
    authenticated = [row.diff for row in bench if not row.public]
    return {
        "api_public_worst_diff_ms": {
            "value": max(public, default=float("nan")),
            "target": f"<= {PUBLIC_TARGET_MS}",
        },
        "api_authenticated_worst_diff_ms": {
            "value": max(authenticated, default=float("nan")),
            "target": f"<= {AUTHENTICATED_TARGET_MS}",
        },
        "api_bench_rows_missed": {
            "value": sum(row.verdict == "MISS" for row in bench),
            "target": "== 0",
        },
        **{
            f"tile_{layer}_api_p50_ms": {
                "value": next(
                    (row.api_p50 for row in bench if row.route == f"tile-{layer}"), float("nan")
                ),
                "target": f"<= {TILE_TARGET_MS:g}",
            }
            for layer in TILE_LAYERS
        },
    }


@contextmanager
def _demo_city(*, server_env: dict, workers: int, log):
    """The demo city's database, made ready, and a production server of its own on it
    (no outbox relay: GETs publish nothing)."""
    demo_dsn = db.demo_database_ready(db.demo_database_url(), log=log)
    env = processes.production_env(database_url=demo_dsn, **server_env)
    with processes.uvicorn_server(
        app="geomarket.asgi:application", workers=workers, env=env, ready_path="/healthz"
    ) as demo_url:
        log(f"  demo-city server: {demo_url}")
        yield demo_url, demo_dsn


def run(
    *,
    base_url: str,
    dsn: str,
    rng: random.Random,
    log,
    workers: int | None = None,
    server_env: dict | None = None,
) -> dict:
    """`base_url` serves the bench city (`dsn`); the demo city gets a server of its own."""
    server_env = {**SERVER_ENV, **(server_env or {})}
    workers = workers or processes.workers()
    load_start = list(os.getloadavg())
    routes = get_routes()
    cases, uncovered = plan(routes)
    contract = CONTRACT.read_text() if CONTRACT.exists() else None
    missing = not_served(routes, contract)
    log(f"  {len(routes)} GET routes, {len(cases)} cases ({sum(c.auto for c in cases)} automatic)")
    for route in uncovered:
        log(f"  NOT COVERED {route.pattern} ({route.name}): add a case to bench/scenarios/api.py")
    for name, where in MEASURED_ELSEWHERE.items():
        log(f"  {name}: {where}")
    if contract is None:
        log(f"  ({CONTRACT} not found: contract GETs not compared)")
    elif missing:
        log(f"  contract GETs not served yet (skipped): {', '.join(missing)}")
    log("  SQL: each request's captured statements replayed through psycopg, unprepared")
    log(f"  n*: one request over {MAX_REQUEST_S:g} s, timed in-process, not sent to the server")
    log("  " + HEADER)
    rows, failures = [], []
    for city_name in ("bench", "demo"):
        served = (
            nullcontext((base_url, dsn))
            if city_name == "bench"
            else _demo_city(server_env=server_env, workers=workers, log=log)
        )
        with served as (city_url, city_dsn):
            city_rows, city_failures = run_city(
                base_url=city_url,
                dsn=city_dsn,
                city_name=city_name,
                cases=cases,
                server_env=server_env,
                rng=rng,
                log=log,
            )
        rows += city_rows
        failures += city_failures
    report(rows, log)
    load_end = list(os.getloadavg())
    log(
        "  load average (1, 5, 15 min): "
        + " at the start, ".join(
            ", ".join(f"{v:.2f}" for v in load) for load in (load_start, load_end)
        )
        + " at the end"
    )
    return {
        "rows": [row.as_dict() for row in rows],
        "ratios": ratios_of(rows),
        "not_covered": [route.pattern for route in uncovered],
        "not_served": missing,
        "load_average": {"start": load_start, "end": load_end},
        "failures": failures,
    }


def main() -> int:
    """`python -m bench.scenarios.api`: this scenario alone, against `BENCH_DATABASE_URL`."""
    return run_alone("api", run, extra_env=SERVER_ENV)


if __name__ == "__main__":
    if sys.argv[1:] == ["capture"]:
        _capture_main()
    else:
        raise SystemExit(main())
