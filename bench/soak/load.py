"""`make soak`: a mixed workload against the production stack, Redis faults, then invariants.

1. Recreate the database `geomarket_soak` (or `SOAK_DATABASE_URL`): migrate, then seed a
   city of 200 merchants x 40 products with 2,000 orders of history and 60 couriers.
2. Start everything as subprocesses of this one: two redis-servers of its own (one as
   `REDIS_URL`: the cache, the rate limiter and the Celery results; one as the Celery
   broker), the production web server (uvicorn), a Celery worker and Celery beat. Rate
   limits are lifted through the environment; the limiter still runs on every request it
   guards. A web server, worker or beat that exits is restarted, and the exit reported.
3. Drive a mixed workload for `SOAK_SECONDS` (default 300) with async httpx clients:
   searches, nearby, delivering-to, suggest and ETA; orders on a few hot products with
   little stock and on many cold ones (some with an Idempotency-Key, some retried with
   it); customers cancelling; owners moving orders through preparing and ready,
   cancelling a few and restocking the hot products; operators running priority
   assignment (two at once), courier candidates and analytics; couriers pinging their
   location, picking up and delivering what they were assigned; new customers signing
   up and logging in.
4. Faults while the load goes on: both redis-servers stopped for up to 25 s (the cache
   and the broker at once, as when the one Redis of a deployment goes down), and later
   the broker alone for up to 20 s. `/healthz` is polled apart and says what it sees.
5. Stop the load, let the outbox relay and the worker drain, check the invariants in SQL
   and print each with PASS or FAIL; any FAIL makes the exit status 1.

Every subprocess is stopped at the end, also on Ctrl-C or an error; the logs of the run
stay in `.local/soak/` until the next one.
"""

import asyncio
import atexit
import contextlib
import ctypes
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".local" / "soak"
DATABASE_NAME = "geomarket_soak"
SEED_ARGS = (
    *("--preset", "demo", "--merchants", "200"),
    *("--products-per-merchant", "40", "--couriers", "60"),
)
# Limits high enough never to be reached: the limiter's code path still runs.
NO_LIMIT = "1000000"
BUYERS = 40
HOT_PRODUCTS = 4
HOT_STOCK = 30
HOT_RESTOCK = 15
COLD_MERCHANTS = 40
SEARCHERS = 8
HOT_BUYERS = 6
COLD_BUYERS = 8
OWNERS = 4
OPERATORS = 2
SOLD_STATUSES = ("confirmed", "preparing", "ready", "picked_up", "delivered")
ACTIVE_STATUSES = ("confirmed", "preparing", "ready", "picked_up")
# The transitions of the contract; the seed's first history row has no from_status.
ALLOWED_TRANSITIONS = (
    ("confirmed", "preparing"),
    ("preparing", "ready"),
    ("ready", "picked_up"),
    ("picked_up", "delivered"),
    ("confirmed", "cancelled"),
    ("preparing", "cancelled"),
)
ADVISORY_LOCK = 0x50A4  # one `make soak` at a time on this PostgreSQL
PR_SET_PDEATHSIG = 1


def log(message: str = "") -> None:
    print(message, flush=True)


# --- configuration -----------------------------------------------------------------------


def env_number(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum:g}")
    return value


def soak_database_url() -> str:
    """`SOAK_DATABASE_URL`, else the main database URL with the name `geomarket_soak`.

    The soak drops and recreates that database, so its name must say `soak`."""
    if os.environ.get("SOAK_DATABASE_URL"):
        url = os.environ["SOAK_DATABASE_URL"]
        if "soak" not in urlsplit(url).path:
            raise SystemExit("SOAK_DATABASE_URL must name a database with 'soak' in its name")
        return url
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    from django.conf import settings

    return urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{DATABASE_NAME}"))


def psycopg_dsn(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


@dataclass(frozen=True)
class Fault:
    name: str  # what the load sees meanwhile: "redis down" or "broker down"
    start: float
    end: float
    servers: tuple[str, ...]


def fault_plan(duration: float) -> list[Fault]:
    """Both Redis servers down at about a fifth of the run, the broker alone later."""
    redis_start = 0.2 * duration
    redis_end = redis_start + min(25.0, 0.4 * duration)
    broker_start = max(0.55 * duration, redis_end + 5.0)
    broker_end = broker_start + min(20.0, 0.2 * duration)
    return [
        Fault("redis down", redis_start, redis_end, ("cache", "broker")),
        Fault("broker down", broker_start, min(broker_end, duration - 3.0), ("broker",)),
    ]


# --- subprocesses --------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the soak process dies, even by SIGKILL."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A subprocess in a process group of its own, so that stopping it stops its
    children too (uvicorn's and Celery's worker processes), and so that Ctrl-C reaches
    only the soak, which then stops everything in order."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Only safe while no other thread runs; the soak starts none.
                preexec_fn=(
                    _die_with_parent
                    if _libc is not None and threading.active_count() == 1
                    else None
                ),
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def terminate(self) -> None:
        if self.running():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(5)
        # Whatever of its group outlived the leader (a pool process) goes too.
        self._signal_group(signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def quiet_port(rng: random.Random) -> int:
    """A free port below the ephemeral range, so that no outgoing connection takes it
    while its redis-server is stopped for a fault."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = rng.randint(20000, max(20001, low - 1))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port for redis-server")


class RedisServer:
    """A redis-server of the soak's own: no snapshots, an append-only file in `directory`,
    so what the broker held survives a restart as it would in production."""

    def __init__(self, name: str, directory: Path, port: int):
        directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (make setup installs it)")
        self.child = Child(
            f"redis-server ({name})",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(directory),
            ],
            env=dict(os.environ),
            log_path=RUN_DIR / f"redis-{name}.log",
        )

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.child.start()
        deadline = time.monotonic() + 15
        while not port_is_open(self.port):
            if not self.child.running() or time.monotonic() > deadline:
                raise SystemExit(f"redis-server ({self.name}) did not start:\n{self.child.tail()}")
            time.sleep(0.05)

    async def start_async(self) -> None:
        for _ in range(3):
            self.child.start()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.child.running():
                if port_is_open(self.port):
                    return
                await asyncio.sleep(0.05)
            self.child.stop()
        raise RuntimeError(f"redis-server ({self.name}) did not restart:\n{self.child.tail()}")

    async def stop_async(self) -> None:
        self.child.terminate()
        deadline = time.monotonic() + 15
        while self.child.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.child.stop(timeout=5)


class Stack:
    """Every process the soak starts, stopped in reverse order whatever happens."""

    def __init__(self):
        self.children: list[Child] = []

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        stopped = []
        for child in reversed(self.children):
            if child.process is not None:
                child.stop()
                stopped.append(child.name)
        self.children.clear()
        if stopped:
            log(f"stopped: {', '.join(stopped)}")


class Supervisor:
    """Restarts the web server, the worker or beat when one exits, as systemd's
    `Restart=always` would, and remembers each exit: the soak goes on, and fails."""

    def __init__(self, children: list[Child], clock):
        self.children = children
        self.clock = clock
        self.exits: list[str] = []

    def check(self) -> None:
        for child in self.children:
            if child.process is None or child.running():
                continue
            code = child.process.returncode
            lines = child.tail(400).splitlines()
            reason = next(
                (line for line in reversed(lines) if "CRITICAL" in line or "Unrecoverable" in line),
                next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), ""),
            )
            text = f"t={self.clock():.0f}s {child.name} exited with code {code}: {reason[:200]}"
            self.exits.append(text)
            log(f"  {text}; restarting it")
            child.stop()
            child.start()


# --- the database ----------------------------------------------------------------------


def manage(*args: str, database_url: str, redis_url: str, log_name: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.development",
        "DEBUG": "false",
    }
    out_path = RUN_DIR / log_name
    with open(out_path, "ab") as out:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(out_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"manage.py {args[0]} failed:\n{tail}")


def database_recreate(url: str, *, redis_url: str) -> str:
    """Drop and recreate the soak database, migrate and seed it: 10 to 25 s here, and
    every run starts from the same city with fresh couriers."""
    dsn = psycopg_dsn(url)
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    started = time.monotonic()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    migrate = ("migrate", "--no-input", "-v", "0")
    manage(*migrate, database_url=url, redis_url=redis_url, log_name="migrate.log")
    migrated = time.monotonic()
    manage("seed_demo", *SEED_ARGS, database_url=url, redis_url=redis_url, log_name="seed.log")
    log(
        f"database {name}: recreated and migrated in {migrated - started:.0f} s, "
        f"seeded ({' '.join(SEED_ARGS)}) in {time.monotonic() - migrated:.0f} s"
    )
    return dsn


@contextlib.contextmanager
def soak_lock(dsn: str):
    """One soak at a time: a second one would drop the database under the first."""
    admin = urlunsplit(urlsplit(dsn)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        taken = connection.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK]).fetchone()[0]
        if not taken:
            raise SystemExit("another make soak is running against this PostgreSQL")
        yield


# --- the actors and the city ---------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    user_id: int
    token: str


@dataclass(frozen=True)
class Item:
    product_id: int
    inventory_id: int
    price: Decimal


@dataclass(frozen=True)
class Spot:
    """A merchant, a delivery point in its cheapest covering zone, and its products."""

    merchant_id: int
    lat: float
    lng: float
    min_order: Decimal
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Hot:
    spot: Spot
    item: Item
    filler: Item


@dataclass(frozen=True)
class CourierActor:
    courier_id: int
    token: str
    lat: float
    lng: float


@dataclass
class City:
    buyers: list[Actor]
    owners: dict[int, Actor]  # merchant id -> its owner
    operator: Actor
    couriers: list[CourierActor]
    spots: list[Spot]
    hot: list[Hot]
    words: list[str]
    categories: list[str]
    merchant_ids: list[int]


def _tokens_for(connection, user_ids: Iterable[int]) -> dict[int, str]:
    """A token per user, created where missing (40 hex characters, as DRF makes them)."""
    user_ids = sorted(set(user_ids))
    existing = dict(
        connection.execute(
            "SELECT user_id, key FROM authtoken_token WHERE user_id = ANY(%s)", [user_ids]
        ).fetchall()
    )
    missing = [(secrets.token_hex(20), user_id) for user_id in user_ids if user_id not in existing]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, now(), %s)", missing
        )
    existing.update({user_id: key for key, user_id in missing})
    return existing


def _users_create(connection, *, prefix: str, count: int, staff: bool = False) -> list[int]:
    rows = connection.execute(
        """
        INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
        SELECT '!', false, %(prefix)s || lpad(n::text, 3, '0'), 'Soak', '',
               %(prefix)s || lpad(n::text, 3, '0') || '@example.test', %(staff)s, true, now()
        FROM generate_series(1, %(count)s) AS n
        RETURNING id
        """,
        {"prefix": prefix, "count": count, "staff": staff},
    ).fetchall()
    return [row[0] for row in rows]


SPOTS_SQL = """
WITH p AS (
    SELECT m.id AS merchant_id,
           ST_Project(m.location, random() * 1500, radians(random() * 360)) AS point
    FROM merchants_merchant m, generate_series(1, 3)
    WHERE m.is_active
)
SELECT DISTINCT ON (p.merchant_id)
       p.merchant_id, ST_Y(p.point::geometry), ST_X(p.point::geometry), z.min_order_amount
FROM p
CROSS JOIN LATERAL (
    SELECT min_order_amount FROM merchants_deliveryzone z
    WHERE z.merchant_id = p.merchant_id AND z.is_active AND ST_Covers(z.area, p.point)
    ORDER BY z.delivery_fee, z.id LIMIT 1
) z
ORDER BY p.merchant_id
"""

ITEMS_SQL = """
SELECT p.merchant_id, p.id, i.id, p.price, i.quantity
FROM catalog_product p JOIN inventory_inventory i ON i.product_id = p.id
WHERE p.is_published AND p.merchant_id = ANY(%s) AND i.quantity >= 5
ORDER BY p.merchant_id, p.id
"""


def city_prepare(dsn: str, rng: random.Random) -> City:
    """Users and tokens for every actor, delivery spots, and the hot products' stock."""
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT setseed(%s)", [rng.random() * 2 - 1])
        buyer_ids = _users_create(connection, prefix="soak-buyer-", count=BUYERS)
        operator_id = _users_create(connection, prefix="soak-operator-", count=1, staff=True)[0]
        owner_of = dict(
            connection.execute(
                "SELECT id, owner_id FROM merchants_merchant WHERE is_active"
            ).fetchall()
        )
        courier_rows = connection.execute(
            "SELECT id, user_id, ST_Y(location::geometry), ST_X(location::geometry)"
            " FROM delivery_courier ORDER BY id"
        ).fetchall()
        tokens = _tokens_for(
            connection,
            [*buyer_ids, operator_id, *owner_of.values(), *(row[1] for row in courier_rows)],
        )
        spots_raw = connection.execute(SPOTS_SQL).fetchall()
        items_by_merchant: dict[int, list[Item]] = defaultdict(list)
        for merchant_id, product_id, inventory_id, price, _ in connection.execute(
            ITEMS_SQL, [[row[0] for row in spots_raw]]
        ):
            items_by_merchant[merchant_id].append(Item(product_id, inventory_id, price))
        spots = [
            Spot(merchant_id, lat, lng, min_order, tuple(items_by_merchant[merchant_id]))
            for merchant_id, lat, lng, min_order in spots_raw
            if len(items_by_merchant[merchant_id]) >= 4
        ]
        if len(spots) < HOT_PRODUCTS + 10:
            raise SystemExit(f"the soak city has too few merchants to order from ({len(spots)})")
        rng.shuffle(spots)
        hot = []
        for spot in spots[:HOT_PRODUCTS]:
            by_price = sorted(spot.items, key=lambda item: item.price, reverse=True)
            hot.append(Hot(spot=spot, item=by_price[1], filler=by_price[0]))
        connection.execute(
            "UPDATE inventory_inventory SET quantity = %s WHERE id = ANY(%s)",
            [HOT_STOCK, [h.item.inventory_id for h in hot]],
        )
        # Fillers top hot orders up to the zone minimum: give them room to do it.
        connection.execute(
            "UPDATE inventory_inventory SET quantity = 5000 WHERE id = ANY(%s)",
            [[h.filler.inventory_id for h in hot]],
        )
        words = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT lower(w) FROM catalog_product,"
                " regexp_split_to_table(title, '\\s+') AS w"
                " WHERE length(w) >= 4 AND w ~ '^[A-Za-z]+$' LIMIT 300"
            )
        ]
        categories = [
            row[0] for row in connection.execute("SELECT slug FROM catalog_productcategory")
        ]
        connection.execute("ANALYZE accounts_user, authtoken_token, inventory_inventory")
    return City(
        buyers=[Actor(user_id, tokens[user_id]) for user_id in buyer_ids],
        owners={m: Actor(owner, tokens[owner]) for m, owner in owner_of.items()},
        operator=Actor(operator_id, tokens[operator_id]),
        couriers=[
            CourierActor(courier_id, tokens[user_id], lat or 52.52, lng or 13.405)
            for courier_id, user_id, lat, lng in courier_rows
        ],
        spots=spots,
        hot=hot,
        words=words or ["bread", "coffee", "apple"],
        categories=categories,
        merchant_ids=sorted(owner_of),
    )


@dataclass(frozen=True)
class Marks:
    """Where the soak's own rows start: everything with a larger id is the soak's."""

    order_id: int
    adjustment_id: int


def stock_snapshot(dsn: str) -> Marks:
    with psycopg.connect(dsn) as connection:
        connection.execute("DROP TABLE IF EXISTS soak_stock_start")
        connection.execute(
            "CREATE TABLE soak_stock_start AS SELECT product_id, quantity FROM inventory_inventory"
        )
        row = connection.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM orders_order),"
            " (SELECT coalesce(max(id), 0) FROM inventory_inventoryadjustment)"
        ).fetchone()
    return Marks(*row)


# --- the load --------------------------------------------------------------------------------


@dataclass
class Stats:
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    phases: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    transport: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values()) + sum(self.transport.values())

    def sample(self, text: str) -> None:
        if len(self.samples) < 25:
            self.samples.append(text)


class Load:
    def __init__(
        self,
        *,
        city: City,
        marks: Marks,
        base_url: str,
        duration: float,
        dsn: str,
        redis: dict[str, RedisServer],
        seed: int,
        supervisor: Supervisor,
    ):
        self.city = city
        self.marks = marks
        self.base_url = base_url
        self.duration = duration
        self.dsn = dsn
        self.redis = redis
        self.seed = seed
        self.stats = Stats()
        self.phase = "normal"
        self.started = 0.0
        self.buyers = list(city.buyers)
        self.cold_spots = [s for s in city.spots[HOT_PRODUCTS:] if s.items][:COLD_MERCHANTS]
        self.points = [(s.lat, s.lng) for s in city.spots]
        self.orders: dict[int, str] = {}  # soak order id -> status at placement
        self.merchants_with_orders: list[int] = []
        self._merchant_seen: set[int] = set()
        self.assigned: dict[int, int] = {}  # order id -> courier id, from assignment answers
        self.double_assignments: list[str] = []
        self.idempotency_mismatches: list[str] = []
        self.capacity_samples = 0
        self.capacity_violations: list[str] = []
        self.health_log: list[tuple[float, int, dict]] = []
        self.fault_log: list[str] = []
        self.client: httpx.AsyncClient | None = None
        self.supervisor = supervisor

    # --- helpers ---

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self.elapsed() < self.duration

    async def call(
        self,
        label: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict | None = None,
        body=None,
        headers: dict | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> httpx.Response | None:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Token {token}"
        phase = self.phase
        started = time.monotonic()
        try:
            response = await self.client.request(
                method, path, params=params, json=body, headers=all_headers
            )
        except httpx.HTTPError as exc:
            self.stats.transport[label] += 1
            self.stats.phases[phase]["transport error"] += 1
            self.stats.failures.append(
                f"t={self.elapsed():.0f}s [{phase}] {method} {path} after"
                f" {time.monotonic() - started:.1f} s: {exc!r}"
            )
            return None
        self.stats.latencies[label].append(time.monotonic() - started)
        code = response.status_code
        self.stats.statuses[label][code] += 1
        self.stats.phases[phase][f"{code // 100}xx"] += 1
        if code not in expect:
            self.stats.unexpected[(label, code)] += 1
            self.stats.sample(
                f"t={self.elapsed():.0f}s [{phase}] {method} {path} -> {code}:"
                f" {response.text[:200]}"
            )
        return response

    def point(self, rng: random.Random) -> tuple[float, float]:
        lat, lng = rng.choice(self.points)
        if rng.random() < 0.5:  # a client of its own; the rest repeat and may hit the cache
            lat += rng.uniform(-0.003, 0.003)
            lng += rng.uniform(-0.005, 0.005)
        return round(lat, 6), round(lng, 6)

    @staticmethod
    async def pause(rng: random.Random, low: float, high: float) -> None:
        await asyncio.sleep(rng.uniform(low, high))

    def order_recorded(self, order: dict, merchant_id: int) -> None:
        self.orders[order["id"]] = order["status"]
        if order["status"] == "confirmed" and merchant_id not in self._merchant_seen:
            self._merchant_seen.add(merchant_id)
            self.merchants_with_orders.append(merchant_id)

    # --- order plans ---

    @staticmethod
    def _body(spot: Spot, lines: dict[Item, int]) -> dict:
        return {
            "merchant_id": spot.merchant_id,
            "items": [{"product_id": i.product_id, "quantity": q} for i, q in lines.items()],
            "delivery_address": {
                "line1": "1 Soak Street",
                "city": "Soak City",
                "postal_code": "10115",
                "location": {"type": "Point", "coordinates": [spot.lng, spot.lat]},
            },
        }

    def plan_cold(self, rng: random.Random) -> tuple[Spot, dict]:
        spot = rng.choice(self.cold_spots)
        chosen = rng.sample(spot.items, k=min(len(spot.items), rng.randint(1, 3)))
        lines = {item: rng.randint(1, 2) for item in chosen}
        priciest = max(chosen, key=lambda item: item.price)
        subtotal = sum((i.price * q for i, q in lines.items()), Decimal(0))
        if subtotal < spot.min_order:
            lines[priciest] += math.ceil((spot.min_order - subtotal) / priciest.price)
        return spot, self._body(spot, lines)

    def plan_hot(self, rng: random.Random) -> tuple[Spot, dict]:
        hot = rng.choice(self.city.hot)
        lines = {hot.item: rng.randint(1, 2)}
        subtotal = hot.item.price * lines[hot.item]
        if subtotal < hot.spot.min_order:
            lines[hot.filler] = math.ceil((hot.spot.min_order - subtotal) / hot.filler.price)
        return hot.spot, self._body(hot.spot, lines)

    # --- virtual users ---

    async def get(self, label: str, path: str, token: str | None = None, **kwargs):
        return await self.call(label, "GET", path, token=token, **kwargs)

    async def post(self, label: str, path: str, body, token: str | None = None, **kwargs):
        return await self.call(label, "POST", path, token=token, body=body, **kwargs)

    async def patch(self, label: str, path: str, body, token: str | None = None, **kwargs):
        return await self.call(label, "PATCH", path, token=token, body=body, **kwargs)

    async def searcher(self, rng: random.Random, index: int) -> None:
        token = self.buyers[index].token if index % 2 else None
        words, categories = self.city.words, self.city.categories
        while self.running():
            kind = rng.choices(
                ("search", "nearby", "delivering", "suggest", "eta"), weights=(3, 3, 2, 2, 1)
            )[0]
            lat, lng = self.point(rng)
            if kind == "search":
                params = {"q": rng.choice(words)}
                if rng.random() < 0.3:
                    params["category"] = rng.choice(categories)
                if rng.random() < 0.3:
                    params["sort"] = rng.choice(("price", "-price", "newest", "relevance"))
                if rng.random() < 0.3:
                    params["in_stock"] = "true"
                # A second page that does not exist is a 404 ("Invalid page."), as in DRF.
                expect = (200,)
                if rng.random() < 0.2:
                    params["page"], expect = 2, (200, 404)
                path = "/api/v1/search/products/"
                await self.get("search/products", path, token, params=params, expect=expect)
            elif kind == "nearby":
                params = {"lat": lat, "lng": lng, "radius": rng.choice((1000, 3000, 5000))}
                if rng.random() < 0.3:
                    params["q"] = rng.choice(words)
                if rng.random() < 0.3:
                    params["deliverable"] = "true"
                if rng.random() < 0.2:
                    params["category"] = rng.choice(categories)
                await self.get("products/nearby", "/api/v1/products/nearby/", token, params=params)
            elif kind == "delivering":
                path = "/api/v1/merchants/delivering-to/"
                params = {"lat": lat, "lng": lng}
                await self.get("merchants/delivering-to", path, token, params=params)
            elif kind == "suggest":
                word = rng.choice(words)
                params = {"q": word[: rng.randint(3, len(word))]}
                await self.get("search/suggest", "/api/v1/search/suggest/", token, params=params)
            else:
                body = {
                    "destination": {"lat": lat, "lng": lng},
                    "merchant_ids": rng.sample(self.city.merchant_ids, k=rng.randint(1, 5)),
                }
                await self.post("delivery/eta", "/api/v1/delivery/eta/", body)
            await self.pause(rng, 0.0, 0.05)

    async def buyer(self, rng: random.Random, hot: bool) -> None:
        label = "orders: place (hot)" if hot else "orders: place (cold)"
        while self.running():
            buyer = rng.choice(self.buyers)
            spot, body = self.plan_hot(rng) if hot else self.plan_cold(rng)
            key = f"soak-{uuid.uuid4()}" if rng.random() < 0.3 else None
            headers = {"Idempotency-Key": key} if key else None
            place = {"token": buyer.token, "headers": headers, "expect": (201,)}
            response = await self.post(label, "/api/v1/orders/", body, **place)
            if key is not None and (response is None or rng.random() < 0.3):
                # What a careful client does after a timeout, and here sometimes anyway.
                again = await self.post(
                    "orders: retry with the same key", "/api/v1/orders/", body, **place
                )
                if response is None:
                    response = again
                elif again is not None and again.status_code == response.status_code == 201:
                    first, second = response.json()["id"], again.json()["id"]
                    if first != second:
                        self.idempotency_mismatches.append(f"key {key}: {first}, then {second}")
            if response is not None and response.status_code == 201:
                order = response.json()
                self.order_recorded(order, spot.merchant_id)
                path = f"/api/v1/orders/{order['id']}/"
                if order["status"] == "confirmed" and rng.random() < 0.12:
                    await self.pause(rng, 0.0, 1.5)
                    cancel = {"status": "cancelled", "reason": "soak"}
                    await self.post(
                        "customer: cancel", f"{path}status/", cancel, buyer.token, expect=(200, 409)
                    )
                elif rng.random() < 0.15:
                    await self.get("customer: order detail", path, buyer.token)
            if rng.random() < 0.05:
                params = {"page_size": 20}
                await self.get(
                    "customer: order list", "/api/v1/orders/", buyer.token, params=params
                )
            await self.pause(rng, 0.1, 0.5)

    async def owner(self, rng: random.Random) -> None:
        steps = (("confirmed", "preparing"), ("preparing", "ready"))
        while self.running():
            if not self.merchants_with_orders:
                await asyncio.sleep(0.2)
                continue
            merchant_id = rng.choice(self.merchants_with_orders)
            token = self.city.owners[merchant_id].token
            for current, following in steps:
                params = {"status": current, "merchant_id": merchant_id, "page_size": 50}
                listing = await self.get(
                    "owner: list orders", "/api/v1/orders/", token, params=params
                )
                if listing is None or listing.status_code != 200:
                    continue
                # The list is newest first; a shop with a backlog works off its oldest
                # orders, which are also the ones dispatch gives couriers first.
                pages = listing.json()["total_pages"]
                if pages > 1:
                    # Another owner session may have emptied that page meanwhile: 404.
                    params["page"] = pages
                    listing = await self.get(
                        "owner: list orders",
                        "/api/v1/orders/",
                        token,
                        params=params,
                        expect=(200, 404),
                    )
                    if listing is None or listing.status_code != 200:
                        continue
                for order in reversed(listing.json()["results"]):
                    target = following
                    # Only the soak's own orders are cancelled: a seeded order took no stock.
                    if order["id"] > self.marks.order_id and rng.random() < 0.05:
                        target = "cancelled"
                    path = f"/api/v1/orders/{order['id']}/status/"
                    body = {"status": target, "reason": "soak"}
                    label = f"owner: {current} -> {target}"
                    await self.post(label, path, body, token, expect=(200, 409))
            roll = rng.random()
            if roll < 0.05:
                await self.get("owner: stats", "/api/v1/orders/stats/", token)
            elif roll < 0.1:
                path = f"/api/v1/merchants/{merchant_id}/orders/"
                await self.get("owner: merchant orders", path, token)
            elif roll < 0.15:
                path = f"/api/v1/merchants/{merchant_id}/inventory/"
                await self.get("owner: merchant inventory", path, token)
            await self.pause(rng, 0.05, 0.2)

    async def restocker(self, rng: random.Random) -> None:
        """The hot products' owners put stock back now and then once it runs low."""
        while self.running():
            for hot in self.city.hot:
                token = self.city.owners[hot.spot.merchant_id].token
                path = f"/api/v1/inventory/{hot.item.inventory_id}/"
                row = await self.get("owner: inventory row", path, token)
                if row is not None and row.status_code == 200 and row.json()["quantity"] < 5:
                    body = {"delta": HOT_RESTOCK, "reason": "soak restock"}
                    await self.post("owner: restock", f"{path}adjust/", body, token)
            await self.pause(rng, 4.0, 8.0)

    async def operator(self, rng: random.Random) -> None:
        token = self.city.operator.token
        reports = (
            ("/api/v1/analytics/top-products/", {"top": 3}),
            ("/api/v1/analytics/revenue/", {"interval": "day"}),
            ("/api/v1/analytics/revenue/", {"interval": "week"}),
            ("/api/v1/analytics/merchants/", {}),
            ("/api/v1/orders/analytics/", {}),
        )
        while self.running():
            body = {} if rng.random() < 0.8 else {"max_distance_m": 8000}
            path = "/api/v1/orders/priority-assignment/"
            response = await self.post("operator: priority-assignment", path, body, token)
            if response is not None and response.status_code == 200:
                for assignment in response.json()["assignments"]:
                    order_id, courier_id = assignment["order_id"], assignment["courier_id"]
                    if order_id in self.assigned:
                        self.double_assignments.append(
                            f"order {order_id}: courier {self.assigned[order_id]},"
                            f" then courier {courier_id}"
                        )
                    else:
                        self.assigned[order_id] = courier_id
            if self.orders and rng.random() < 0.3:
                order_id = rng.choice(list(self.orders)[-200:])
                path = f"/api/v1/orders/{order_id}/courier-candidates/"
                params = {"limit": 5}
                await self.get("operator: courier-candidates", path, token, params=params)
            if rng.random() < 0.3:
                path, params = rng.choice(reports)
                if rng.random() < 0.3:
                    params = {**params, "format": "csv"}
                await self.get("operator: analytics", path, token, params=params)
            if rng.random() < 0.1:
                params = {"status": "available"}
                await self.get("operator: couriers", "/api/v1/couriers/", token, params=params)
            await self.pause(rng, 0.5, 1.5)

    async def courier(self, rng: random.Random, courier: CourierActor) -> None:
        token = courier.token
        lat, lng = courier.lat, courier.lng
        picked_up: dict[int, float] = {}
        available = {"status": "available"}
        await self.pause(rng, 0.0, 2.0)
        body = {"lat": lat, "lng": lng}
        await self.post("courier: location", "/api/v1/couriers/me/location/", body, token)
        await self.patch("courier: available", "/api/v1/couriers/me/", available, token)
        while self.running():
            lat += rng.uniform(-0.0005, 0.0005)
            lng += rng.uniform(-0.0008, 0.0008)
            body = {"lat": round(lat, 6), "lng": round(lng, 6)}
            await self.post("courier: location", "/api/v1/couriers/me/location/", body, token)
            mine = await self.get("courier: my orders", "/api/v1/couriers/me/orders/", token)
            for order in mine.json()["results"] if mine and mine.status_code == 200 else ():
                target = None
                if order["status"] == "ready":
                    target = "picked_up"
                elif order["status"] == "picked_up":
                    first_seen = picked_up.setdefault(order["id"], self.elapsed())
                    if self.elapsed() - first_seen > 3:
                        target = "delivered"
                if target:
                    path = f"/api/v1/orders/{order['id']}/status/"
                    body = {"status": target}
                    answer = await self.post(
                        f"courier: -> {target}", path, body, token, expect=(200, 409)
                    )
                    if answer is not None and target == "picked_up":
                        picked_up[order["id"]] = self.elapsed()
            if rng.random() < 0.05:
                me = await self.get("courier: me", "/api/v1/couriers/me/", token)
                if me is not None and me.status_code == 200 and me.json()["status"] == "offline":
                    path = "/api/v1/couriers/me/"
                    await self.patch("courier: available", path, available, token)
            await self.pause(rng, 1.0, 2.5)

    async def newcomer(self, rng: random.Random) -> None:
        """Now and then a customer signs up, logs in and joins the buyers."""
        number = 0
        while self.running():
            await self.pause(rng, 5.0, 12.0)
            if not self.running():
                break
            number += 1
            username = f"soak-new-{number:03d}-{secrets.token_hex(3)}"
            password = secrets.token_urlsafe(18)
            body = {"username": username, "password": password}
            signup = {**body, "email": f"{username}@example.test"}
            path = "/api/v1/auth/register/"
            registered = await self.post("auth: register", path, signup, expect=(201,))
            if registered is None or registered.status_code != 201:
                continue
            login = await self.post("auth: token", "/api/v1/auth/token/", body)
            if login is not None and login.status_code == 200:
                token = login.json()["token"]
                await self.get("auth: me", "/api/v1/auth/me/", token)
                self.buyers.append(Actor(registered.json()["id"], token))

    async def health(self) -> None:
        """`/healthz` once a second, counted apart: it answers 503 on purpose in a fault."""
        while self.running():
            try:
                response = await self.client.get("/healthz", timeout=10)
                checks = response.json().get("checks", {})
                self.health_log.append((self.elapsed(), response.status_code, checks))
            except (httpx.HTTPError, ValueError):
                self.health_log.append((self.elapsed(), 0, {}))
            await asyncio.sleep(1.0)

    async def faults(self) -> None:
        for fault in fault_plan(self.duration):
            await asyncio.sleep(max(0.0, fault.start - self.elapsed()))
            if not self.running():
                return
            servers = [self.redis[name] for name in fault.servers]
            await asyncio.gather(*(server.stop_async() for server in servers))
            self.phase = fault.name
            stopped = " and ".join(f"{s.name} ({s.port})" for s in servers)
            self.note_fault(f"stopped redis-server {stopped}")
            await asyncio.sleep(max(0.0, fault.end - self.elapsed()))
            await asyncio.gather(*(server.start_async() for server in servers))
            self.phase = "normal"
            self.note_fault(f"restarted redis-server {stopped}")

    def note_fault(self, text: str) -> None:
        line = f"t={self.elapsed():5.1f}s  {text}"
        self.fault_log.append(line)
        log(f"  {line}")

    async def supervise(self) -> None:
        while self.running():
            await asyncio.sleep(1.0)
            self.supervisor.check()

    async def capacity_sampler(self) -> None:
        """Every 5 s during the run: no courier carries more active orders than it may."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            while self.running():
                rows = await (await conn.execute(CAPACITY_SQL, [list(ACTIVE_STATUSES)])).fetchall()
                self.capacity_samples += 1
                for courier_id, active, capacity in rows:
                    self.capacity_violations.append(
                        f"t={self.elapsed():.0f}s courier {courier_id}: {active} > {capacity}"
                    )
                await asyncio.sleep(5.0)

    async def progress(self) -> None:
        last_total, last_time = 0, 0.0
        while self.running():
            await asyncio.sleep(min(15.0, max(0.5, self.duration - self.elapsed())))
            now, total = self.elapsed(), self.stats.total()
            fivexx = sum(v for p in self.stats.phases.values() for k, v in p.items() if k == "5xx")
            confirmed = sum(1 for s in self.orders.values() if s == "confirmed")
            log(
                f"  t={now:5.0f}s  [{self.phase:<11}] {total:>8,} requests"
                f" ({(total - last_total) / max(0.001, now - last_time):6.0f}/s)"
                f"  5xx {fivexx}  failed {sum(self.stats.transport.values())}"
                f"  orders {len(self.orders):,} ({confirmed:,} confirmed)"
                f"  assigned {len(self.assigned):,}"
            )
            last_total, last_time = total, now

    async def guarded(self, coroutine) -> None:
        """A virtual user that breaks says so at once instead of silently stopping."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log(f"  t={self.elapsed():.0f}s a virtual user failed: {exc!r}")
            raise

    async def run(self) -> float:
        # uvicorn closes a connection idle for 5 s; a client that reuses one at that moment
        # reads a reset. Real clients retry that; this one lets idle connections go first.
        limits = httpx.Limits(
            max_connections=256, max_keepalive_connections=256, keepalive_expiry=2.0
        )
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=httpx.Timeout(30.0)
        ) as client:
            self.client = client
            self.started = time.monotonic()
            rng = random.Random(self.seed)

            def child_rng() -> random.Random:
                return random.Random(rng.getrandbits(64))

            users = [
                *(self.searcher(child_rng(), i) for i in range(SEARCHERS)),
                *(self.buyer(child_rng(), hot=True) for _ in range(HOT_BUYERS)),
                *(self.buyer(child_rng(), hot=False) for _ in range(COLD_BUYERS)),
                *(self.owner(child_rng()) for _ in range(OWNERS)),
                *(self.operator(child_rng()) for _ in range(OPERATORS)),
                *(self.courier(child_rng(), c) for c in self.city.couriers),
                self.restocker(child_rng()),
                self.newcomer(child_rng()),
            ]
            background = [
                self.health(),
                self.faults(),
                self.capacity_sampler(),
                self.progress(),
                self.supervise(),
            ]
            tasks = [
                asyncio.ensure_future(self.guarded(coroutine))
                for coroutine in [*users, *background]
            ]
            try:
                done, pending = await asyncio.wait(tasks, timeout=self.duration + 45)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return time.monotonic() - self.started


CAPACITY_SQL = """
SELECT c.id, count(o.id), c.capacity
FROM delivery_courier c JOIN orders_order o ON o.courier_id = c.id AND o.status = ANY(%s)
GROUP BY c.id, c.capacity
HAVING count(o.id) > c.capacity
"""


# --- after the load ----------------------------------------------------------------------


def drain(dsn: str, marks: Marks, timeout: float, supervisor: Supervisor) -> tuple[int, int]:
    """Wait for the outbox to empty and every confirmation to be recorded."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last_log = 0.0
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            pending, missing = connection.execute(
                """
                SELECT (SELECT count(*) FROM orders_outboxmessage WHERE published_at IS NULL),
                       (SELECT count(*) FROM orders_order o
                        WHERE o.id > %s AND o.status <> 'rejected' AND NOT EXISTS (
                            SELECT 1 FROM orders_ordernotification n
                            WHERE n.order_id = o.id AND n.kind = 'confirmation'))
                """,
                [marks.order_id],
            ).fetchone()
            now = time.monotonic()
            if (pending == 0 and missing == 0) or now > deadline:
                log(
                    f"drain: {pending} outbox rows pending, {missing} confirmations missing"
                    f" after {now - started:.0f} s"
                )
                return pending, missing
            if now - last_log > 10:
                log(f"  draining: {pending} outbox rows pending, {missing} confirmations missing")
                last_log = now
            supervisor.check()
            time.sleep(1.0)


def broker_unacked(redis_url: str) -> list[int]:
    """Order ids of confirmations the broker holds as delivered but not acknowledged
    (kombu's `unacked` hash: the message, its exchange and routing key)."""
    import base64

    import redis

    ids = []
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=3)
        for raw in client.hvals("unacked"):
            message = json.loads(raw)[0]
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)
            kwargs = args[1] if isinstance(args, list) and len(args) > 1 else {}
            if isinstance(kwargs, dict) and "order_id" in kwargs:
                ids.append(kwargs["order_id"])
    except Exception:  # noqa: S110 - a diagnostic only
        pass
    return sorted(ids)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def checks_run(dsn: str, marks: Marks, load: Load, drained: tuple[int, int]) -> list[Check]:
    results: list[Check] = []
    with psycopg.connect(dsn, autocommit=True) as connection:

        def rows(sql: str, params=None) -> list[tuple]:
            return connection.execute(sql, params).fetchall()

        # 1. Stock: start + restocks - what non-rejected, non-cancelled soak orders took.
        mismatches = rows(
            """
            WITH sold AS (
                SELECT i.product_id, sum(i.quantity) AS quantity
                FROM orders_orderitem i JOIN orders_order o ON o.id = i.order_id
                WHERE o.id > %(order)s AND o.status = ANY(%(sold)s)
                GROUP BY i.product_id
            ), restocked AS (
                SELECT inv.product_id, sum(a.delta) AS quantity
                FROM inventory_inventoryadjustment a
                JOIN inventory_inventory inv ON inv.id = a.inventory_id
                WHERE a.id > %(adjustment)s
                GROUP BY inv.product_id
            )
            SELECT s.product_id, s.quantity, coalesce(r.quantity, 0), coalesce(d.quantity, 0),
                   inv.quantity
            FROM soak_stock_start s
            FULL JOIN inventory_inventory inv ON inv.product_id = s.product_id
            LEFT JOIN sold d ON d.product_id = coalesce(s.product_id, inv.product_id)
            LEFT JOIN restocked r ON r.product_id = coalesce(s.product_id, inv.product_id)
            WHERE inv.quantity IS DISTINCT FROM
                  s.quantity + coalesce(r.quantity, 0) - coalesce(d.quantity, 0)
            ORDER BY 1
            """,
            {
                "order": marks.order_id,
                "adjustment": marks.adjustment_id,
                "sold": list(SOLD_STATUSES),
            },
        )
        touched, checked, units, restocked = rows(
            """
            SELECT (SELECT count(DISTINCT i.product_id) FROM orders_orderitem i
                    WHERE i.order_id > %(order)s),
                   (SELECT count(*) FROM inventory_inventory),
                   (SELECT coalesce(sum(i.quantity), 0) FROM orders_orderitem i
                    JOIN orders_order o ON o.id = i.order_id
                    WHERE o.id > %(order)s AND o.status = ANY(%(sold)s)),
                   (SELECT coalesce(sum(delta), 0) FROM inventory_inventoryadjustment
                    WHERE id > %(adjustment)s)
            """,
            {
                "order": marks.order_id,
                "adjustment": marks.adjustment_id,
                "sold": list(SOLD_STATUSES),
            },
        )[0]
        results.append(
            Check(
                "stock = start + restocks - sold (non-rejected, non-cancelled soak orders)",
                not mismatches,
                f"{checked:,} products, {touched:,} ordered, {units:,} units sold, "
                f"{restocked:,} restocked; {len(mismatches)} mismatches"
                + "".join(
                    f"\n      product {p}: start {s}, restocked {r}, sold {d}, now {n}"
                    for p, s, r, d, n in mismatches[:10]
                ),
            )
        )
        negative = rows("SELECT product_id, quantity FROM inventory_inventory WHERE quantity < 0")
        results.append(Check("no negative stock", not negative, f"{len(negative)} rows below zero"))

        # 2. Assignment: no order in two assignment answers, the database agrees with them,
        # and no courier carries more active orders than its capacity.
        assigned = load.assigned
        disagree = rows(
            "SELECT o.id, o.courier_id, a.courier_id FROM orders_order o"
            " JOIN unnest(%s::bigint[], %s::bigint[]) AS a(order_id, courier_id)"
            " ON a.order_id = o.id WHERE o.courier_id IS DISTINCT FROM a.courier_id",
            [list(assigned), list(assigned.values())],
        )
        results.append(
            Check(
                "no order assigned twice",
                not load.double_assignments and not disagree,
                f"{len(assigned):,} assignments answered, {len(load.double_assignments)} orders "
                f"in two answers, {len(disagree)} orders whose courier differs from the answer"
                + "".join(f"\n      {d}" for d in load.double_assignments[:5])
                + "".join(
                    f"\n      order {o}: courier {c}, answered {a}" for o, c, a in disagree[:5]
                ),
            )
        )
        over = rows(CAPACITY_SQL, [list(ACTIVE_STATUSES)])
        results.append(
            Check(
                "no courier over capacity",
                not over and not load.capacity_violations,
                f"at the end: {len(over)} couriers over; sampled every 5 s during the run "
                f"({load.capacity_samples} samples): {len(load.capacity_violations)} violations"
                + "".join(f"\n      {v}" for v in load.capacity_violations[:5]),
            )
        )
        carried_without = rows(
            "SELECT id FROM orders_order WHERE id > %s AND courier_id IS NULL"
            " AND status IN ('picked_up', 'delivered')",
            [marks.order_id],
        )
        results.append(
            Check(
                "picked-up and delivered orders have a courier",
                not carried_without,
                f"{len(carried_without)} without one",
            )
        )

        # 3. Notifications: exactly one confirmation per non-rejected soak order, none for
        # rejected ones.
        counts = rows(
            """
            SELECT o.status = 'rejected', count(n.id)
            FROM orders_order o
            LEFT JOIN orders_ordernotification n
                   ON n.order_id = o.id AND n.kind = 'confirmation'
            WHERE o.id > %s
            GROUP BY o.id, o.status
            """,
            [marks.order_id],
        )
        confirmed = [n for rejected, n in counts if not rejected]
        rejected = [n for rejected, n in counts if rejected]
        wrong = sum(1 for n in confirmed if n != 1) + sum(1 for n in rejected if n != 0)
        detail = (
            f"{len(confirmed):,} non-rejected orders: "
            f"{sum(1 for n in confirmed if n == 1):,} with one, "
            f"{sum(1 for n in confirmed if n == 0):,} with none, "
            f"{sum(1 for n in confirmed if n > 1):,} with more; "
            f"{len(rejected):,} rejected orders, {sum(1 for n in rejected if n):,} notified"
        )
        if wrong:
            stuck = broker_unacked(load.redis["broker"].url())
            if stuck:
                detail += (
                    f"\n      {len(stuck)} confirmations sit in the broker's unacked set (held "
                    "until the visibility timeout, CELERY_VISIBILITY_TIMEOUT): "
                    + ", ".join(map(str, stuck[:10]))
                )
        results.append(Check("one confirmation per confirmed order", not wrong, detail))
        results.append(
            Check(
                "outbox drained",
                drained[0] == 0,
                f"{drained[0]} outbox rows unpublished after the drain",
            )
        )

        # 4. History: every soak order's changes form a chain of allowed transitions that
        # ends in its status.
        broken = rows(
            """
            WITH h AS (
                SELECT c.order_id, c.from_status, c.to_status,
                       lag(c.to_status) OVER w AS previous,
                       row_number() OVER w AS n,
                       count(*) OVER (PARTITION BY c.order_id) AS total
                FROM orders_orderstatuschange c
                WHERE c.order_id > %(order)s
                WINDOW w AS (PARTITION BY c.order_id ORDER BY c.created_at, c.id)
            )
            SELECT o.id, o.status FROM orders_order o
            WHERE o.id > %(order)s AND (
                NOT EXISTS (SELECT 1 FROM h WHERE h.order_id = o.id)
                OR EXISTS (
                    SELECT 1 FROM h WHERE h.order_id = o.id AND (
                        (h.n = 1 AND (h.from_status <> '' OR
                                      h.to_status NOT IN ('confirmed', 'rejected')))
                        OR (h.n > 1 AND (h.from_status IS DISTINCT FROM h.previous OR
                            (h.from_status, h.to_status) NOT IN (SELECT * FROM unnest(
                                %(froms)s::text[], %(tos)s::text[]))))
                        OR (h.n = h.total AND h.to_status <> o.status)))
            )
            """,
            {
                "order": marks.order_id,
                "froms": [a for a, _ in ALLOWED_TRANSITIONS],
                "tos": [b for _, b in ALLOWED_TRANSITIONS],
            },
        )
        results.append(
            Check(
                "status history is a chain of allowed transitions ending in the status",
                not broken,
                f"{len(broken)} orders break it"
                + "".join(f"\n      order {o} ({s})" for o, s in broken[:5]),
            )
        )

    # 5. HTTP: no 5xx (healthz apart), no failed request, idempotent retries agree.
    fivexx = Counter(
        {
            label: sum(n for code, n in counter.items() if code >= 500)
            for label, counter in load.stats.statuses.items()
        }
    )
    fivexx = +fivexx
    results.append(
        Check(
            "zero 5xx responses (/healthz not counted)",
            not fivexx,
            f"{sum(fivexx.values())} 5xx"
            + "".join(f"\n      {label}: {n}" for label, n in fivexx.most_common()),
        )
    )
    results.append(
        Check(
            "zero failed requests (connection errors, timeouts)",
            not load.stats.transport,
            f"{sum(load.stats.transport.values())} failed"
            + "".join(f"\n      {label}: {n}" for label, n in load.stats.transport.most_common()),
        )
    )
    client_errors = Counter(
        {key: n for key, n in load.stats.unexpected.items() if 400 <= key[1] < 500}
    )
    results.append(
        Check(
            "no unexpected 4xx (409 on a raced transition is expected)",
            not client_errors,
            f"{sum(client_errors.values())} unexpected"
            + "".join(
                f"\n      {label}: {code} x {n}" for (label, code), n in client_errors.most_common()
            ),
        )
    )
    results.append(
        Check(
            "idempotent retries return the first order",
            not load.idempotency_mismatches,
            f"{load.stats.statuses['orders: retry with the same key'].total()} retries, "
            f"{len(load.idempotency_mismatches)} with another order"
            + "".join(f"\n      {m}" for m in load.idempotency_mismatches[:5]),
        )
    )
    return results


def _ms(values: list[float], fraction: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000:.0f}"


def report_traffic(load: Load, seconds: float) -> None:
    stats = load.stats
    log()
    log(f"{'endpoint':<38} {'requests':>9} {'p50 ms':>7} {'p95 ms':>7}  statuses")
    for label in sorted(stats.statuses, key=lambda k: -stats.statuses[k].total()):
        counter = stats.statuses[label]
        codes = ", ".join(f"{code} x {n:,}" for code, n in sorted(counter.items()))
        failed = stats.transport.get(label)
        if failed:
            codes += f", failed x {failed}"
        values = stats.latencies[label]
        log(
            f"{label:<38} {counter.total():>9,} {_ms(values, 0.5):>7} {_ms(values, 0.95):>7}"
            f"  {codes}"
        )
    total = stats.total()
    overall = Counter()
    for counter in stats.statuses.values():
        overall.update(counter)
    log()
    log(f"requests: {total:,} in {seconds:.0f} s = {total / seconds:.0f} requests/s")
    log(
        "by status: "
        + ", ".join(f"{code} x {n:,}" for code, n in sorted(overall.items()))
        + (f", failed x {sum(stats.transport.values())}" if stats.transport else "")
    )
    errors = {code: n for code, n in overall.items() if code >= 400}
    log(
        "errors by status: "
        + (", ".join(f"{code} x {n:,}" for code, n in sorted(errors.items())) or "none")
    )
    for phase in ("normal", "redis down", "broker down"):
        counter = stats.phases.get(phase)
        if counter:
            log(
                f"  while {phase:<12} "
                + ", ".join(f"{key} x {n:,}" for key, n in sorted(counter.items()))
            )
    if stats.samples:
        log("first unexpected answers:")
        for sample in stats.samples[:10]:
            log(f"  {sample}")
    if stats.failures:
        log("failed requests:")
        for failure in stats.failures[:10]:
            log(f"  {failure}")


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b")
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def server_errors(log_path: Path) -> Counter:
    """The exception that ended each 500 in the web server's log, by path and message."""
    found: Counter = Counter()
    path, last = None, None
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    for line in [*lines, "0000-00-00 00:00:00 end"]:
        if LOG_RECORD.match(line):
            if path is not None:
                found[f"{path}: {last or '?'}"] += 1
            match = re.search(r"Internal Server Error: (\S+)", line)
            path = re.sub(r"/\d+/", "/{id}/", match.group(1)) if match else None
            last = None
        elif path is not None and EXCEPTION_LINE.match(line):
            last = line.strip()[:160]
        elif path is not None and last is not None and last.endswith(":") and line.strip():
            last = f"{last} {line.strip()}"[:160]
    return found


def worker_replacements(log_path: Path) -> list[str]:
    """uvicorn's supervisor kills and replaces a worker that died or did not answer its
    health check within 5 s; each time it logs `Child process [pid] died`."""
    if not log_path.exists():
        return []
    return [
        line[line.index("Child process") :].strip()
        for line in log_path.read_text(errors="replace").splitlines()
        if "Child process [" in line and "died" in line
    ]


def report_health(load: Load) -> None:
    codes = Counter(status for _, status, _ in load.health_log)
    log(
        "healthz (polled each second, not counted above): "
        + ", ".join(f"{code or 'failed'} x {n}" for code, n in sorted(codes.items()))
    )
    for check in ("database", "cache", "broker"):
        # A span runs from the first poll that names the check failing to the last one
        # before a poll that finds it healthy again.
        spans: list[list[float]] = []
        failing_now = False
        for at, status, checks in load.health_log:
            failing = status == 0 or checks.get(check, "ok") != "ok"
            if failing and failing_now:
                spans[-1][1] = at
            elif failing:
                spans.append([at, at])
            failing_now = failing
        if spans:
            log(
                f"  {check} reported failing at "
                + ", ".join(f"{a:.0f}-{b:.0f} s" for a, b in spans)
            )


def report_orders(dsn: str, marks: Marks) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        by_status = connection.execute(
            "SELECT status, count(*) FROM orders_order WHERE id > %s GROUP BY 1 ORDER BY 2 DESC",
            [marks.order_id],
        ).fetchall()
    log(
        f"soak orders: {sum(n for _, n in by_status):,} ("
        + ", ".join(f"{status} {n:,}" for status, n in by_status)
        + ")"
    )


# --- main --------------------------------------------------------------------------------------


def server_env(*, database_url: str, cache: RedisServer, broker: RedisServer) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "REDIS_URL": cache.url(0),
        "CELERY_BROKER_URL": broker.url(0),
        "CACHE_KEY_PREFIX": "soak",
        "LOG_LEVEL": "WARNING",
        "SUGGEST_RATE_LIMIT_PER_MINUTE": NO_LIMIT,
        "TOKEN_RATE_LIMIT_PER_MINUTE": NO_LIMIT,
        "REGISTER_RATE_LIMIT_PER_MINUTE": NO_LIMIT,
        "ORDER_RATE_LIMIT_PER_MINUTE": NO_LIMIT,
        "ORDER_IP_RATE_LIMIT_PER_MINUTE": NO_LIMIT,
    }


def wait_healthy(base_url: str, web: Child, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not web.running():
            raise SystemExit(f"the web server exited:\n{web.tail()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the web server did not become healthy:\n{web.tail()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main() -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    duration = env_number("SOAK_SECONDS", 300.0, 30.0)
    drain_timeout = env_number("SOAK_DRAIN_SECONDS", 180.0, 10.0)
    workers = int(env_number("SOAK_WORKERS", float(os.cpu_count() or 2), 1.0))
    seed = int(env_number("SOAK_SEED", 42.0, 0.0))
    rng = random.Random(seed)
    url = soak_database_url()
    dsn = psycopg_dsn(url)

    signal.signal(signal.SIGTERM, _terminated)
    stack = Stack()
    atexit.register(stack.stop_all)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    log(f"soak: {duration:.0f} s of load, logs in {RUN_DIR.relative_to(ROOT)}/")
    try:
        with soak_lock(dsn):
            cache = RedisServer("cache", RUN_DIR / "redis-cache", quiet_port(rng))
            stack.add(cache.child)
            cache.start()
            broker = RedisServer("broker", RUN_DIR / "redis-broker", quiet_port(rng))
            stack.add(broker.child)
            broker.start()
            log(f"redis-server: cache on {cache.port}, broker on {broker.port}")
            database_recreate(url, redis_url=cache.url(0))
            city = city_prepare(dsn, rng)
            log(
                f"actors: {len(city.buyers)} buyers, {len(city.owners)} owners, "
                f"{len(city.couriers)} couriers, 1 operator; {len(city.spots)} merchants to "
                f"order from, {len(city.hot)} hot products with {HOT_STOCK} in stock"
            )

            env = server_env(database_url=url, cache=cache, broker=broker)
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            python = sys.executable
            uvicorn = [python, "-m", "uvicorn", "geomarket.asgi:application"]
            uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
            # Info shows the supervisor replacing a worker process that hung or died.
            uvicorn += ["--no-access-log", "--log-level", "info"]
            celery = [python, "-m", "celery", "-A", "geomarket"]
            worker_args = ["worker", "--loglevel", "INFO", "--concurrency", "2"]
            worker_args += ["--hostname", "soak@%h"]
            beat_args = ["beat", "--loglevel", "INFO"]
            beat_args += ["--schedule", str(RUN_DIR / "celerybeat-schedule")]
            web = stack.add(Child("uvicorn", uvicorn, env=env, log_path=RUN_DIR / "web.log"))
            worker = stack.add(
                Child(
                    "celery worker", celery + worker_args, env=env, log_path=RUN_DIR / "worker.log"
                )
            )
            beat = stack.add(
                Child("celery beat", celery + beat_args, env=env, log_path=RUN_DIR / "beat.log")
            )
            relay = stack.add(
                Child(
                    "outbox relay",
                    [python, "manage.py", "relay_outbox"],
                    env=env,
                    log_path=RUN_DIR / "relay.log",
                )
            )
            for child in (web, worker, beat, relay):
                child.start()
            wait_healthy(base_url, web)
            log(
                f"web: {base_url} (uvicorn, {workers} workers, production settings); "
                "celery worker, outbox relay and beat started"
            )

            marks = stock_snapshot(dsn)
            plan = fault_plan(duration)
            log("faults: " + "; ".join(f"{f.name} {f.start:.0f}-{f.end:.0f} s" for f in plan))
            supervisor = Supervisor([web, worker, beat, relay], clock=lambda: load.elapsed())
            load = Load(
                city=city,
                marks=marks,
                base_url=base_url,
                duration=duration,
                dsn=dsn,
                redis={"cache": cache, "broker": broker},
                seed=seed,
                supervisor=supervisor,
            )
            log("load:")
            seconds = asyncio.run(load.run())
            drained = drain(dsn, marks, drain_timeout, supervisor)

            report_traffic(load, seconds)
            errors = server_errors(web.log_path)
            if errors:
                log(f"server errors in {web.log_path.relative_to(ROOT)} (the last exception):")
                for text, count in errors.most_common(10):
                    log(f"  {count:>5} x {text}")
            report_health(load)
            report_orders(dsn, marks)
            results = checks_run(dsn, marks, load, drained)
            replaced = worker_replacements(web.log_path)
            results.append(
                Check(
                    "web server, worker, relay and beat stayed up",
                    not supervisor.exits and not replaced,
                    f"{len(supervisor.exits)} process exits (each restarted at once), "
                    f"{len(replaced)} uvicorn worker processes replaced (hung or dead)"
                    + "".join(f"\n      {text}" for text in [*supervisor.exits, *replaced]),
                )
            )
            log()
            log("invariants:")
            for check in results:
                log(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
            failed = [check for check in results if not check.passed]
            log()
            log(
                f"soak: {'FAILED' if failed else 'passed'} ({len(results) - len(failed)}"
                f"/{len(results)} invariants hold)"
            )
            return 1 if failed else 0
    except KeyboardInterrupt:
        log("\ninterrupted")
        return 130
    finally:
        stack.stop_all()
        with contextlib.suppress(OSError):
            for name in ("redis-cache", "redis-broker"):
                shutil.rmtree(RUN_DIR / name, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
