"""What the soak runs against and with: its database, its actors' numbers, its faults."""

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.common import ROOT
from bench.common.db import development_url

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
# The orders holding the stock they took: a failed delivery holds it until it is returned,
# which gives it back (as cancelling does).
SOLD_STATUSES = ("confirmed", "preparing", "ready", "picked_up", "delivered", "failed")
ACTIVE_STATUSES = ("confirmed", "preparing", "ready", "picked_up")
# The transitions of the contract; the seed's first history row has no from_status.
ALLOWED_TRANSITIONS = (
    ("confirmed", "preparing"),
    ("preparing", "ready"),
    ("ready", "picked_up"),
    ("picked_up", "delivered"),
    ("confirmed", "cancelled"),
    ("preparing", "cancelled"),
    ("picked_up", "failed"),
    ("failed", "returned"),
)
# Of the picked-up orders, the share their couriers fail, with one of the contract's
# reasons. Only the soak's own failed orders are returned: a seeded order took no stock
# to give back (as only the soak's own are cancelled).
FAILED_SHARE = 0.15
FAILURE_REASONS = ("customer_absent", "address_not_found", "refused", "damaged", "other")
# Who returns a failed soak order, by its id modulo 4: its owner, the operator, or no one
# (it ends the soak failed, still holding its stock).
RETURNED_BY = {1: "owner", 2: "owner", 3: "operator"}
# Order streams held open at once, by whom: customers, owners, and the operator or the
# order's courier; each follows an order for a while, and reconnects as a client would.
CUSTOMER_WATCHERS = 12
OWNER_WATCHERS = 4
OTHER_WATCHERS = 2
# Of a courier's pings, the share followed by a late one: a point between its last two,
# sent afterwards, as a device sends what it kept through a network gap.
LATE_PING_SHARE = 0.15
# API.md's visibility rule ("Live delivery"): the statuses in which each role sees the
# courier's point, None for always. Stated here apart from the server's statement of it
# (tracking.selectors), which is what the soak checks.
LOCATION_VISIBLE_WHILE: dict[str, frozenset[str] | None] = {
    "customer": frozenset({"picked_up"}),
    "owner": frozenset({"ready", "picked_up"}),
    "courier": None,
    "operator": None,
}
FINAL_STATUSES = ("delivered", "cancelled", "rejected", "returned")
# The servers' cache key prefix: the orders' Redis streams are read under it.
CACHE_KEY_PREFIX = "soak"
ADVISORY_LOCK = 0x50A4  # one `make soak` at a time on this PostgreSQL
PR_SET_PDEATHSIG = 1


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
    return development_url(DATABASE_NAME)


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
