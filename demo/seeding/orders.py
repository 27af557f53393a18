"""The orders step: 90 days of order history before an anchor, and the orders in flight.

Orders fill `ORDER_WINDOW` before `options.orders_until` (default: the moment of seeding),
so analytics over "the last 30 days" find delivered orders whenever the demo is loaded.
Everything is measured from the anchor: equal seeds and equal anchors give equal rows.

- Volume follows the clock of the city (local solar time): quiet nights, a lunch peak,
  a bigger evening peak, more orders on Fridays and weekends, slow growth over the
  window. Order ids increase with `created_at`, as they do in production.
- Orders older than the last `LIVE_SPAN` are settled: most delivered 15 to 90 minutes
  after they were placed, some cancelled (by the customer while confirmed, by the shop
  while preparing), some rejected for want of stock, a few failed at the door with a
  courier's reason (half of those returned to the shop). The newest orders are in flight,
  confirmed, preparing, ready or picked up, each as far along as its own timeline says.
- Each order is what `orders.services.order_place` would have written: published
  products of one merchant at their current title and price, a delivery address inside
  one of the merchant's active zones, the fee of the cheapest active zone covering it,
  a subtotal reaching that zone's minimum, and a status history whose last row is the
  order's status. Stock is left alone: the orders are history. No order has a courier
  here; the couriers step, which comes after, gives some in-flight orders one.

Buyers are the demo customer (a few dozen orders, one of them in flight at the demo
owner's shop) and a pool of bulk customers who cannot log in, some ordering far more
often than others.
"""

import bisect
import json
import math
import random
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from analytics.services import rollups_rebuild
from catalog.models import Product
from demo.seeding import content
from demo.seeding.context import (
    COPY_NULL,
    ORDER_WINDOW,
    LiveOrder,
    RowSpool,
    SeedContext,
    SeedRefused,
    copy_logged,
    copy_text,
    ids_reserve,
)
from demo.seeding.users import user_row, users_copy
from geomarket.accounts.models import User
from geomarket.geo import metres_per_degree
from merchants.models import Address
from merchants.selectors import delivery_zones_reach
from orders.models import FailureReason, Order, OrderItem, OrderStatusChange

# Orders placed within this many seconds before the anchor are still in flight; older
# ones are settled. It is also the longest delivery, so no settled order ends after
# the anchor.
LIVE_SPAN = 90 * 60
DELIVERY_MINUTES = (15, 90, 35)  # shortest, longest, most common
# One order in flight per this many orders, and never fewer than eight (once there are
# 32 orders), so every status shows up in the smallest demo.
ORDERS_PER_LIVE_ORDER = 1_200
MIN_LIVE_ORDERS = 8
# In-flight orders take these statuses in turn: preparing and picked up last longest.
LIVE_CYCLE = ("confirmed", "preparing", "ready", "picked_up", "preparing", "picked_up")
# Settled orders, in percent; every status gets at least one order once there are three.
SETTLED_MIX = (
    ("delivered", 82),
    ("cancelled", 9),
    ("rejected", 7),
    ("failed", 1),
    ("returned", 1),
)

CUSTOMERS_PER_ORDER = 0.1
MAX_CUSTOMERS = 100_000
# About this many orders are the demo customer's, whatever the size.
DEMO_CUSTOMER_ORDERS = 60

MAX_LINES = 5
MAX_QUANTITY = 5


def _table(weights: Sequence[int]) -> tuple[int, ...]:
    """Values 1..len(weights), each repeated by its weight: a draw is one index."""
    return tuple(value for value, weight in enumerate(weights, start=1) for _ in range(weight))


LINE_COUNTS = _table((46, 30, 12, 8, 4))  # 1.9 lines on average, before topping up
QUANTITIES = _table((58, 22, 11, 5, 4))

# Orders per hour of the local day, relative; weekends start later and lunch is bigger.
WEEKDAY_HOURS = (
    0.25, 0.12, 0.06, 0.04, 0.04, 0.08, 0.25, 0.5, 0.7, 0.8, 0.95, 1.5,
    1.9, 1.5, 1.0, 0.95, 1.2, 1.9, 2.8, 3.1, 2.6, 1.8, 1.0, 0.5,
)  # fmt: skip
WEEKEND_HOURS = (
    0.4, 0.25, 0.12, 0.06, 0.04, 0.05, 0.1, 0.25, 0.55, 0.95, 1.5, 2.0,
    2.2, 1.9, 1.5, 1.3, 1.5, 2.1, 2.9, 3.1, 2.6, 1.9, 1.2, 0.7,
)  # fmt: skip
# Monday to Sunday.
WEEKDAYS = (0.86, 0.84, 0.88, 0.94, 1.12, 1.22, 1.14)

# Delivery points keep this far inside a zone's edge, and this far outside the edge of
# any cheaper zone, so that the fee is the cheapest covering zone's by a wide margin:
# points are placed with the metres per degree at the shop, a few metres off at 8 km.
ZONE_MARGIN = 0.02
ZONE_MARGIN_M = 10.0

_CLOCK: list[str] = []


@dataclass
class _Shop:
    """A merchant that can take orders, with what an order needs to know about it."""

    id: int
    lat: float
    lng: float
    # Metres per degree of latitude and of longitude at the shop.
    m_lat: float
    m_lng: float
    # Its published products: catalog indices first .. first + count - 1.
    first: int
    count: int
    # Indices of its dearest products, dearest first: the basket of last resort.
    dearest: tuple[int, ...]
    # (fee, minimum order, nearest and farthest distance in metres), cheapest first,
    # and cumulative weights to draw one.
    zones: list[tuple[int, int, float, float]]
    zone_weights: list[float]


@dataclass
class _Catalog:
    """Every published product in flat arrays, grouped by merchant.

    Titles stay in COPY text format (escaped) in one buffer, product `i`'s from
    `title_starts[i]` to `title_starts[i + 1]`: a million products cost some 60 MB
    rather than millions of Python objects.
    """

    ids: array
    cents: array
    title_starts: array
    titles: bytearray


def _cents(text: Any) -> int:
    """Cents from a numeric(_, 2) as PostgreSQL prints it ("12.30"), exactly."""
    if isinstance(text, bytes | bytearray):
        text = text.decode()
    units, _, fraction = str(text).partition(".")
    return int(units) * 100 + int((fraction + "00")[:2])


def _catalog_load(ctx: SeedContext) -> tuple[_Catalog, dict[int, tuple[int, int]]]:
    """The seeded merchants' published products, read back in one COPY."""
    first, last = ctx.merchants[0].id, ctx.merchants[-1].id
    ids, cents, starts, titles = array("q"), array("q"), array("q", [0]), bytearray()
    ranges: dict[int, tuple[int, int]] = {}
    table = connection.ops.quote_name(Product._meta.db_table)
    # Integers only are interpolated: COPY takes no parameters.
    sql = (
        f"COPY (SELECT merchant_id, id, price, title FROM {table} "  # noqa: S608
        f"WHERE is_published AND merchant_id BETWEEN {int(first)} AND {int(last)} "
        "ORDER BY merchant_id, id) TO STDOUT"
    )
    current, start = None, 0
    started = time.monotonic()
    with ctx.cursor.cursor.copy(sql) as copy:
        # Each read is one row, still in COPY text format.
        for row in copy:
            merchant, product, price, title = bytes(row)[:-1].split(b"\t", 3)
            merchant_id = int(merchant)
            if merchant_id != current:
                if current is not None:
                    ranges[current] = (start, len(ids) - start)
                current, start = merchant_id, len(ids)
            ids.append(int(product))
            cents.append(_cents(price))
            titles += title
            starts.append(len(titles))
    if current is not None:
        ranges[current] = (start, len(ids) - start)
    copy_logged(sql=sql, written=len(ids), started=started)
    return _Catalog(ids=ids, cents=cents, title_starts=starts, titles=titles), ranges


def _zones_load(ctx: SeedContext) -> dict[int, list[tuple[int, int, float, float]]]:
    """Each seeded active merchant's active zones, cheapest first, with their reach
    (`merchants.selectors.delivery_zones_reach`), in cents."""
    zones: dict[int, list[tuple[int, int, float, float]]] = {}
    for merchant_id, fee, minimum, inner, outer in delivery_zones_reach(
        first_merchant_id=ctx.merchants[0].id, last_merchant_id=ctx.merchants[-1].id
    ):
        zones.setdefault(merchant_id, []).append(
            (_cents(fee), _cents(minimum), float(inner), float(outer))
        )
    return zones


def _shops_plan(
    *,
    ctx: SeedContext,
    rng: random.Random,
    catalog: _Catalog,
    ranges: dict[int, tuple[int, int]],
) -> tuple[list[_Shop], list[float]]:
    """The merchants that can take orders, and cumulative weights to draw one.

    A merchant qualifies when it is active, sells something, and some zone's minimum
    order can be reached with five of its products five times over. Bigger and more
    popular shops get more orders.
    """
    zones_by_merchant = _zones_load(ctx)
    shops: list[_Shop] = []
    weights: list[float] = []
    for merchant in ctx.merchants:
        popularity = rng.lognormvariate(0, 0.6)
        first, count = ranges.get(merchant.id, (0, 0))
        zones = zones_by_merchant.get(merchant.id)
        if not merchant.is_active or not count or not zones:
            continue
        dearest = tuple(
            sorted(range(first, first + count), key=lambda i: (-catalog.cents[i], i))[:MAX_LINES]
        )
        largest_basket = MAX_QUANTITY * sum(catalog.cents[i] for i in dearest)
        options: list[tuple[int, int, float, float]] = []
        option_weights: list[float] = []
        reach = 0.0  # the farthest corner of the cheaper zones so far
        for index, (fee, minimum, inner, outer) in enumerate(zones):
            near = reach * (1 + ZONE_MARGIN) + ZONE_MARGIN_M if index else 0.0
            far = inner * (1 - ZONE_MARGIN) - ZONE_MARGIN_M
            reach = max(reach, outer)
            if far <= near or minimum > largest_basket:
                continue
            options.append((fee, minimum, near, far))
            # Points spread evenly over the area; dearer rings deter some customers.
            option_weights.append((far * far - near * near) / (1 + index))
        if not options:
            continue
        m_lat, m_lng = metres_per_degree(lat=merchant.lat)
        shops.append(
            _Shop(
                id=merchant.id,
                lat=merchant.lat,
                lng=merchant.lng,
                m_lat=m_lat,
                m_lng=m_lng,
                first=first,
                count=count,
                dearest=dearest,
                zones=options,
                zone_weights=list(_cumulative(option_weights)),
            )
        )
        weights.append(math.sqrt(count) * popularity)
    return shops, list(_cumulative(weights))


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def _apportion(total: int, weights: Sequence[float], *, at_least_one: bool = False) -> list[int]:
    """`total` split in proportion to `weights`, exactly, largest remainders first;
    with `at_least_one`, each share gets one first when there are enough to go round."""
    floor_each = 1 if at_least_one and total >= len(weights) else 0
    spread = total - floor_each * len(weights)
    weight_sum = sum(weights)
    shares = [spread * weight / weight_sum for weight in weights]
    counts = [floor_each + math.floor(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] % 1), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _hour_slots(
    *, ctx: SeedContext, rng: random.Random, start: int, end: int, orders: int
) -> list[tuple[int, int, int]]:
    """(from, to, orders) for each hour of [start, end), in epoch seconds.

    Hours are those of the city's solar time (its longitude / 15), close enough to its
    clock for lunch and dinner to fall where they should.
    """
    offset = round(ctx.options.center_lng / 15) * 3600
    day_noise: dict[int, float] = {}
    slots: list[tuple[int, int]] = []
    weights: list[float] = []
    boundary = (start + offset) // 3600 * 3600 - offset
    while boundary < end:
        low, high = max(boundary, start), min(boundary + 3600, end)
        local = boundary + offset
        day = local // 86_400
        if day not in day_noise:
            day_noise[day] = rng.lognormvariate(0, 0.12)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        hours = WEEKEND_HOURS if weekday >= 5 else WEEKDAY_HOURS
        growth = 0.8 + 0.2 * (low - start) / (end - start)
        slots.append((low, high))
        weights.append(
            hours[local // 3600 % 24]
            * WEEKDAYS[weekday]
            * day_noise[day]
            * growth
            * (high - low)
            / 3600
        )
        boundary += 3600
    counts = _apportion(orders, weights)
    return [(low, high, count) for (low, high), count in zip(slots, counts, strict=True)]


def _timestamp_formatter(*, start: int, end: int) -> Callable[[int], str]:
    """Epoch seconds to PostgreSQL timestamptz text, from two lookup tables."""
    if not _CLOCK:
        _CLOCK.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400))
    first_day = start // 86_400
    days = [
        datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
        for day in range(first_day, end // 86_400 + 2)
    ]
    clock = _CLOCK

    def timestamp(seconds: int) -> str:
        return f"{days[seconds // 86_400 - first_day]} {clock[seconds % 86_400]}+00"

    return timestamp


ORDER_COLUMNS = (
    "id",
    "status",
    "subtotal",
    "delivery_fee",
    "total",
    "rejection_reason",
    "shortages",
    "failure_reason",
    "created_at",
    "updated_at",
    "delivered_at",
    "buyer_id",
    "delivery_address_id",
    "merchant_id",
)
ADDRESS_COLUMNS = ("id", "line1", "line2", "city", "postal_code", "country", "location")
# Items and history take their ids from their sequences, in the order written.
ITEM_COLUMNS = ("order_id", "product_id", "title", "unit_price", "quantity", "line_total")
HISTORY_COLUMNS = ("order_id", "from_status", "to_status", "reason", "created_at")


def _customer_username(index: int) -> str:
    return f"customer-{index:06d}"


def _customers_seed(
    *, ctx: SeedContext, rng: random.Random, orders: int, joined_before: int
) -> tuple[int, list[float]]:
    """Bulk customers who cannot log in (password "!"), one per ten orders up to
    `MAX_CUSTOMERS`; return the first id and cumulative weights to draw a buyer by:
    a few order most days, most a handful of times in the window."""
    count = min(MAX_CUSTOMERS, max(1, round(orders * CUSTOMERS_PER_ORDER)))
    usernames = [_customer_username(index) for index in range(1, count + 1)]
    ctx.cursor.execute(
        f"SELECT username FROM {connection.ops.quote_name(User._meta.db_table)} "  # noqa: S608
        "WHERE username = ANY(%s) ORDER BY username LIMIT 3",
        [usernames],
    )
    taken = [username for (username,) in ctx.cursor.fetchall()]
    if taken:
        raise SeedRefused(
            f"Users named like the seed's already exist ({', '.join(taken)}, ...); "
            "seed an empty database."
        )
    first_id = ids_reserve(ctx=ctx, model=User, count=count)
    joined_at = datetime.fromtimestamp(joined_before, tz=UTC)

    def rows() -> Iterator[tuple]:
        for index, username in enumerate(usernames):
            yield user_row(
                user_id=first_id + index,
                username=username,
                first_name=rng.choice(content.FIRST_NAMES),
                last_name=rng.choice(content.LAST_NAMES),
                joined_at=joined_at - timedelta(seconds=rng.randint(0, 400 * 86_400)),
            )

    users_copy(ctx=ctx, count_as="customers", rows=rows())
    return first_id, list(_cumulative(rng.lognormvariate(0, 0.8) for _ in range(count)))


# The four tables one pass writes. One of them streams straight into its COPY while the
# rows are drawn, so PostgreSQL works on it alongside Python; the others wait in spools.
TABLES = ("orders", "addresses", "items", "history")
STREAMED = "history"


def _orders_text(
    *,
    ctx: SeedContext,
    rng: random.Random,
    shops: list[_Shop],
    shop_weights: list[float],
    catalog: _Catalog,
    buyers: tuple[int, list[float]],
    order_first: int,
    address_first: int,
    spools: dict[str, RowSpool],
) -> Iterator[bytes]:
    """The rows of the `STREAMED` table in COPY text, oldest order first; the other
    tables' rows go to their spools.

    One pass draws everything about an order, so its rows agree by construction: the
    amounts are sums of the very lines written, the status is the last history row.
    """
    total = ctx.options.orders
    anchor = int(ctx.options.orders_until.timestamp())
    start = anchor - int(ORDER_WINDOW.total_seconds())
    settled_end = anchor - LIVE_SPAN
    live = min(total, max(min(MIN_LIVE_ORDERS, total // 4), total // ORDERS_PER_LIVE_ORDER))
    settled = total - live

    random_ = rng.random
    randint = rng.randint
    choice = rng.choice
    uniform = rng.uniform
    triangular = rng.triangular
    timestamp = _timestamp_formatter(start=start, end=anchor)
    product_ids, cents = catalog.ids, catalog.cents
    titles, title_starts = catalog.titles, catalog.title_starts
    customer_first, customer_weights = buyers
    customer_last = customer_first + len(customer_weights) - 1
    customer_total = customer_weights[-1]
    demo_customer = next(a.user_id for a in ctx.demo_accounts if a.role == "customer")
    demo_share = min(0.05, DEMO_CUSTOMER_ORDERS / total)
    line_counts, line_draws = LINE_COUNTS, len(LINE_COUNTS)
    quantity_table, quantity_draws = QUANTITIES, len(QUANTITIES)
    shortest, longest, usual = DELIVERY_MINUTES
    streets, extras = content.STREETS, content.ADDRESS_EXTRAS
    customer_reasons = content.CUSTOMER_CANCEL_REASONS
    merchant_reasons = content.MERCHANT_CANCEL_REASONS
    failure_reasons = FailureReason.values
    cos, sin, sqrt, tau = math.cos, math.sin, math.sqrt, math.tau
    bisect_right = bisect.bisect_right

    orders_out: list[str] = []
    addresses_out: list[str] = []
    items_out: list[bytes] = []
    history_out: list[str] = []
    next_id = order_first

    def buyer() -> int:
        if random_() < demo_share:
            return demo_customer
        return min(
            customer_first + bisect_right(customer_weights, random_() * customer_total),
            customer_last,
        )

    def delivery() -> tuple[int, int, int, int]:
        """Seconds after placing: preparing, ready, picked up, delivered."""
        seconds = triangular(shortest, longest, usual) * 60
        ready = seconds * uniform(0.35, 0.55)
        return (
            int(seconds * uniform(0.04, 0.12)),
            int(ready),
            int(ready + seconds * uniform(0.03, 0.15)),
            int(seconds),
        )

    def place(created: int, shop: _Shop, buyer_id: int, steps: list[tuple[str, int, str]]) -> int:
        nonlocal next_id
        order_id = next_id
        next_id += 1
        address_id = address_first + (order_id - order_first)

        # Where to: a point in the ring of the drawn zone, evenly over its area.
        zones, weights = shop.zones, shop.zone_weights
        fee, minimum, near, far = zones[
            min(bisect_right(weights, random_() * weights[-1]), len(zones) - 1)
        ]
        distance = sqrt(near * near + random_() * (far * far - near * near))
        bearing = random_() * tau
        lat = shop.lat + distance * cos(bearing) / shop.m_lat
        lng = shop.lng + distance * sin(bearing) / shop.m_lng
        line2 = choice(extras).format(n=randint(1, 6)) if random_() < 0.35 else ""
        addresses_out.append(
            f"{address_id}\t{choice(streets)} {randint(1, 180)}\t{line2}\tBerlin\t"
            f"{randint(10115, 14199)}\tGermany\tSRID=4326;POINT({lng:.7f} {lat:.7f})\n"
        )

        # What: distinct products, then topped up to the zone's minimum as a customer
        # would, mostly by taking more of the same.
        first, count = shop.first, shop.count
        lines = min(line_counts[int(random_() * line_draws)], count)
        picked: list[int] = []
        while len(picked) < lines:
            index = first + int(random_() * count)
            if index not in picked:
                picked.append(index)
        quantities = [quantity_table[int(random_() * quantity_draws)] for _ in picked]
        subtotal = 0
        for index, quantity in zip(picked, quantities, strict=True):
            subtotal += cents[index] * quantity
        most_lines = min(MAX_LINES, count)
        while subtotal < minimum:
            short = [j for j, quantity in enumerate(quantities) if quantity < MAX_QUANTITY]
            if len(picked) < most_lines and (not short or random_() < 0.15):
                index = first + int(random_() * count)
                if index not in picked:
                    picked.append(index)
                    quantities.append(1)
                    subtotal += cents[index]
            elif short:
                j = choice(short)
                quantities[j] += 1
                subtotal += cents[picked[j]]
            else:
                # Only the dearest products reach this minimum (the plan checked they do).
                picked = list(shop.dearest)
                quantities = [MAX_QUANTITY] * len(picked)
                subtotal = sum(cents[i] for i in picked) * MAX_QUANTITY
        for index, quantity in zip(picked, quantities, strict=True):
            price = cents[index]
            line_total = price * quantity
            items_out.append(
                b"%d\t%d\t%s\t%d.%02d\t%d\t%d.%02d\n"
                % (
                    order_id,
                    product_ids[index],
                    titles[title_starts[index] : title_starts[index + 1]],
                    price // 100,
                    price % 100,
                    quantity,
                    line_total // 100,
                    line_total % 100,
                )
            )

        status = steps[-1][0]
        reason, shortages = "", "[]"
        # A failed order keeps its courier's reason, returned or not.
        failure = next((why for name, _, why in steps if name == "failed"), "")
        if status == "rejected":
            # What `_reserve_stock` reports: each line the stock could not cover.
            lacking = sorted(
                rng.sample(range(len(picked)), 1 if len(picked) == 1 or random_() < 0.75 else 2)
            )
            reason = "insufficient_stock"
            shortages = json.dumps(
                [
                    {
                        "product_id": product_ids[picked[j]],
                        "requested": quantities[j],
                        "available": randint(0, quantities[j] - 1),
                    }
                    for j in lacking
                ]
            )
        previous = ""
        for to_status, offset, why in steps:
            history_out.append(
                f"{order_id}\t{previous}\t{to_status}\t{why}\t{timestamp(created + offset)}\n"
            )
            previous = to_status
        updated = timestamp(created + steps[-1][1])
        total_cents = subtotal + fee
        orders_out.append(
            f"{order_id}\t{status}\t{subtotal // 100}.{subtotal % 100:02d}\t"
            f"{fee // 100}.{fee % 100:02d}\t{total_cents // 100}.{total_cents % 100:02d}\t"
            f"{reason}\t{shortages}\t{failure}\t{timestamp(created)}\t{updated}\t"
            f"{updated if status == 'delivered' else COPY_NULL}\t"
            f"{buyer_id}\t{address_id}\t{shop.id}\n"
        )
        return order_id

    def flush() -> bytes:
        blocks = {
            "orders": "".join(orders_out).encode(),
            "addresses": "".join(addresses_out).encode(),
            "items": b"".join(items_out),
            "history": "".join(history_out).encode(),
        }
        for rows in (orders_out, addresses_out, items_out, history_out):
            rows.clear()
        for table, spool in spools.items():
            spool.write(blocks[table])
        return blocks[STREAMED]

    # Settled orders: statuses in exact proportions, shuffled over the window.
    statuses = bytearray().join(
        bytes([code]) * count
        for code, count in enumerate(
            _apportion(settled, [share for _, share in SETTLED_MIX], at_least_one=True)
        )
    )
    rng.shuffle(statuses)
    position = 0
    for low, high, count in _hour_slots(
        ctx=ctx, rng=rng, start=start, end=settled_end, orders=settled
    ):
        if not count:
            continue
        span = high - low
        times = sorted([low + int(random_() * span) for _ in range(count)])
        for created, shop in zip(
            times, rng.choices(shops, cum_weights=shop_weights, k=count), strict=True
        ):
            code = statuses[position]
            position += 1
            if code == 0:
                preparing, ready, picked_up, delivered = delivery()
                steps = [
                    ("confirmed", 0, ""),
                    ("preparing", preparing, ""),
                    ("ready", ready, ""),
                    ("picked_up", picked_up, ""),
                    ("delivered", delivered, ""),
                ]
            elif code == 1:
                if random_() < 0.55:
                    steps = [
                        ("confirmed", 0, ""),
                        ("cancelled", randint(60, 600), choice(customer_reasons)),
                    ]
                else:
                    preparing = randint(60, 360)
                    steps = [
                        ("confirmed", 0, ""),
                        ("preparing", preparing, ""),
                        ("cancelled", preparing + randint(120, 900), choice(merchant_reasons)),
                    ]
            elif code == 2:
                steps = [("rejected", 0, "")]
            else:
                # Failed at the door: picked up, then failed halfway to when it would have
                # been delivered; a returned one is back at the shop by then.
                preparing, ready, picked_up, delivered = delivery()
                failed = (picked_up + delivered) // 2
                steps = [
                    ("confirmed", 0, ""),
                    ("preparing", preparing, ""),
                    ("ready", ready, ""),
                    ("picked_up", picked_up, ""),
                    ("failed", failed, choice(failure_reasons)),
                ]
                if code == 4:
                    steps.append(("returned", delivered, ""))
            place(created, shop, buyer(), steps)
        ctx.progress.advance(count)
        if len(orders_out) >= 5_000:
            yield flush()

    # Orders in flight, each caught somewhere along its own timeline at the anchor. The
    # first two are at the demo owner's shop, the first of them the demo customer's.
    demo_shop = next((shop for shop in shops if shop.id == ctx.merchants[0].id), None)
    in_flight = []
    for index in range(live):
        status = LIVE_CYCLE[index % len(LIVE_CYCLE)]
        preparing, ready, picked_up, delivered = delivery()
        stages = [
            ("confirmed", 0, preparing),
            ("preparing", preparing, ready),
            ("ready", ready, picked_up),
            ("picked_up", picked_up, delivered),
        ]
        reached = next(i for i, stage in enumerate(stages) if stage[0] == status)
        age = randint(stages[reached][1] + 1, stages[reached][2] - 1)
        if demo_shop is not None and index < 2:
            shop = demo_shop
        else:
            shop = rng.choices(shops, cum_weights=shop_weights)[0]
        in_flight.append(
            (
                anchor - age,
                index,
                shop,
                demo_customer if index == 0 else buyer(),
                [(name, offset, "") for name, offset, _ in stages[: reached + 1]],
            )
        )
    in_flight.sort(key=lambda order: (order[0], order[1]))
    for created, index, shop, buyer_id, steps in in_flight:
        order_id = place(created, shop, buyer_id, steps)
        # For the couriers step, which gives some of them a courier.
        ctx.live_orders.append(
            LiveOrder(
                id=order_id,
                merchant_id=shop.id,
                status=steps[-1][0],
                lat=shop.lat,
                lng=shop.lng,
                is_demo_customers=index == 0,
            )
        )
    ctx.progress.advance(live)
    yield flush()


def orders_seed(ctx: SeedContext) -> None:
    """Customers, then orders with their delivery addresses, items and status history.

    The `STREAMED` table's rows go into COPY as they are drawn; the other three tables
    wait in spools (see `RowSpool`) and follow.
    """
    total = ctx.options.orders
    ctx.progress.start(label="orders", total=total)
    if not total:
        ctx.progress.finish()
        return
    rng = ctx.rng("orders")
    catalog, ranges = _catalog_load(ctx)
    shops, shop_weights = _shops_plan(ctx=ctx, rng=rng, catalog=catalog, ranges=ranges)
    if not shops:
        # Nothing is for sale (say, --products-per-merchant 0): no orders to place.
        ctx.progress.finish()
        return
    anchor = int(ctx.options.orders_until.timestamp())
    buyers = _customers_seed(
        ctx=ctx,
        rng=rng,
        orders=total,
        joined_before=anchor - int(ORDER_WINDOW.total_seconds()),
    )
    order_first = ids_reserve(ctx=ctx, model=Order, count=total)
    address_first = ids_reserve(ctx=ctx, model=Address, count=total)
    tables = {
        "orders": (Order, ORDER_COLUMNS, "copy orders", "orders"),
        "addresses": (Address, ADDRESS_COLUMNS, "copy addresses", "delivery addresses"),
        "items": (OrderItem, ITEM_COLUMNS, "copy items", "order items"),
        "history": (OrderStatusChange, HISTORY_COLUMNS, "copy history", "order status changes"),
    }
    spools = {table: RowSpool() for table in TABLES if table != STREAMED}
    for table in TABLES:
        ctx.counts.setdefault(tables[table][3], 0)  # the summary lists them in this order
    try:
        model, columns, _, count_as = tables[STREAMED]
        copy_text(
            ctx=ctx,
            model=model,
            columns=columns,
            blocks=_orders_text(
                ctx=ctx,
                rng=rng,
                shops=shops,
                shop_weights=shop_weights,
                catalog=catalog,
                buyers=buyers,
                order_first=order_first,
                address_first=address_first,
                spools=spools,
            ),
            count_as=count_as,
        )
        ctx.progress.finish()
        del catalog
        for table, spool in spools.items():
            model, columns, label, count_as = tables[table]
            ctx.progress.start(label=label, total=spool.rows)
            copy_text(
                ctx=ctx, model=model, columns=columns, blocks=spool.blocks(), count_as=count_as
            )
            ctx.progress.finish()
        # The history went in without its transitions, which keep the reports' rollups.
        rollups_rebuild()
    finally:
        for spool in spools.values():
            spool.close()
