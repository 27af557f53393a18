"""The soak's city: its database recreated and seeded, the actors with their tokens,
the merchants to order from and the hot products, and where the soak's own rows start."""

import contextlib
import random
import time
from collections import defaultdict
from dataclasses import dataclass

import psycopg

from bench.common import accounts as account_rows
from bench.common.accounts import Account
from bench.common.db import admin_dsn, database_name, manage, psycopg_dsn
from bench.common.report import log
from bench.common.spots import OPEN_FOR_A_RUN, POINT_NEAR_MERCHANT, Item, Spot, spots_sql
from bench.soak.config import ADVISORY_LOCK, BUYERS, HOT_PRODUCTS, HOT_STOCK, RUN_DIR, SEED_ARGS


def database_recreate(url: str, *, redis_url: str) -> str:
    """Drop and recreate the soak database, migrate and seed it: 10 to 25 s here, and
    every run starts from the same city with fresh couriers."""
    dsn = psycopg_dsn(url)
    name = database_name(dsn)
    started = time.monotonic()
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    env = {
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
    }
    migrate = ("migrate", "--no-input", "-v", "0")
    manage(*migrate, database_url=url, env=env, log_path=RUN_DIR / "migrate.log")
    migrated = time.monotonic()
    manage("seed_demo", *SEED_ARGS, database_url=url, env=env, log_path=RUN_DIR / "seed.log")
    log(
        f"database {name}: recreated and migrated in {migrated - started:.0f} s, "
        f"seeded ({' '.join(SEED_ARGS)}) in {time.monotonic() - migrated:.0f} s"
    )
    return dsn


@contextlib.contextmanager
def soak_lock(dsn: str):
    """One soak at a time: a second one would drop the database under the first."""
    with psycopg.connect(admin_dsn(dsn), autocommit=True) as connection:
        taken = connection.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK]).fetchone()[0]
        if not taken:
            raise SystemExit("another make soak is running against this PostgreSQL")
        yield


# --- the actors and the city ---------------------------------------------------------------


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
    buyers: list[Account]
    owners: dict[int, Account]  # merchant id -> its owner
    operator: Account
    couriers: list[CourierActor]
    spots: list[Spot]
    hot: list[Hot]
    words: list[str]
    categories: list[str]
    merchant_ids: list[int]


def _users_create(connection, names: list[str], *, staff: bool = False) -> list[int]:
    ids = account_rows.users(
        connection, names, staff=staff, first_name="Soak", email_domain="example.test"
    )
    return [ids[name] for name in names]


# Up to three tries of a point near each active merchant.
SPOTS_SQL = spots_sql(
    f"SELECT m.id AS merchant_id, {POINT_NEAR_MERCHANT} AS point"
    " FROM merchants_merchant m, generate_series(1, 3)"
    f" WHERE m.is_active AND {OPEN_FOR_A_RUN}",
    one_per_merchant=True,
)

ITEMS_SQL = """
SELECT p.merchant_id, p.id, i.id, p.title, p.price
FROM catalog_product p JOIN inventory_inventory i ON i.product_id = p.id
WHERE p.is_published AND p.merchant_id = ANY(%s) AND i.quantity >= 5
ORDER BY p.merchant_id, p.id
"""


def city_prepare(dsn: str, rng: random.Random) -> City:
    """Users and tokens for every actor, delivery spots, and the hot products' stock."""
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT setseed(%s)", [rng.random() * 2 - 1])
        buyer_ids = _users_create(connection, account_rows.numbered("soak-buyer-", BUYERS))
        operator_id = _users_create(
            connection, account_rows.numbered("soak-operator-", 1), staff=True
        )[0]
        owner_of = dict(
            connection.execute(
                "SELECT id, owner_id FROM merchants_merchant WHERE is_active"
            ).fetchall()
        )
        courier_rows = connection.execute(
            "SELECT id, user_id, ST_Y(location::geometry), ST_X(location::geometry)"
            " FROM delivery_courier ORDER BY id"
        ).fetchall()
        tokens = account_rows.tokens(
            connection,
            [*buyer_ids, operator_id, *owner_of.values(), *(row[1] for row in courier_rows)],
        )
        spots_raw = connection.execute(SPOTS_SQL).fetchall()
        items_by_merchant: dict[int, list[Item]] = defaultdict(list)
        for merchant_id, product_id, inventory_id, title, price in connection.execute(
            ITEMS_SQL, [[row[0] for row in spots_raw]]
        ):
            items_by_merchant[merchant_id].append(Item(product_id, inventory_id, title, price))
        spots = [
            Spot(merchant_id, lat, lng, fee, min_order, tuple(items_by_merchant[merchant_id]))
            for merchant_id, lat, lng, fee, min_order in spots_raw
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
        buyers=[Account(user_id, tokens[user_id]) for user_id in buyer_ids],
        owners={m: Account(owner, tokens[owner]) for m, owner in owner_of.items()},
        operator=Account(operator_id, tokens[operator_id]),
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
    # The last event before the load: each later one goes to every endpoint that takes it.
    event_id: int


def stock_snapshot(dsn: str) -> Marks:
    with psycopg.connect(dsn) as connection:
        connection.execute("DROP TABLE IF EXISTS soak_stock_start")
        connection.execute(
            "CREATE TABLE soak_stock_start AS SELECT product_id, quantity FROM inventory_inventory"
        )
        row = connection.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM orders_order),"
            " (SELECT coalesce(max(id), 0) FROM inventory_inventoryadjustment),"
            " (SELECT coalesce(max(id), 0) FROM events_event)"
        ).fetchone()
    return Marks(*row)
