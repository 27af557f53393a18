"""The couriers step: couriers over the city, the demo courier, and couriers on some of the
orders in flight.

- Couriers are spread like the merchants, densest in the centre, each with a user of
  their own who cannot log in (password "!"). Half ride bikes, 30% scooters, 20% cars;
  most carry one order at a time, cars more often two or three.
- About one in five is offline, last seen a quarter of an hour to three days ago. The
  others are on duty and sent their location seconds to two and a half minutes before
  the anchor (the demo courier within the last fifteen seconds), so dispatch finds them
  for a few minutes after the seed, until their location is older than
  `COURIER_LOCATION_TTL` (five minutes) and the beat task sends them offline, like
  couriers whose app went quiet.
- Every order being carried (`picked_up`) has a courier near its shop, and so does about
  half of the `ready` ones (the courier is on the way); confirmed and preparing orders
  wait for dispatch. Each courier gets one order at most, so none is over capacity, and
  one whose capacity that fills is `busy`, as `orders_assign_priority` leaves it.
- The demo courier (`demo-courier`, with the demo password and a token) is available a
  few hundred metres from the centre with room for two orders, and carries one: the demo
  customer's order in flight (at the demo owner's shop when it sells anything).

The anchor is `--orders-until`, like the orders'. When that defaults to the moment of
seeding, the anchor is the moment the couriers are written instead, so that a seed which
takes minutes still commits fresh couriers; equal seeds give equal couriers either way,
their times equal relative to the anchor.
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import connection
from rest_framework.authtoken.models import Token

from delivery.models import Courier, CourierStatus
from demo.seeding import content
from demo.seeding.context import (
    DEMO_COURIER,
    DEMO_PASSWORD,
    DemoAccount,
    SeedContext,
    SeedRefused,
    copy_rows,
    ids_reserve,
)
from demo.seeding.shapes import point_ewkt, scattered_point
from demo.seeding.users import user_row, users_copy
from geomarket.accounts.models import User
from geomarket.geo import geodesic_destination, local_distance_m
from orders.services import orders_courier_set

VEHICLES = ("bike", "scooter", "car")
VEHICLE_WEIGHTS = (50, 30, 20)
# Capacity 1, 2 and 3 by vehicle, in percent: about 70% carry one order at a time.
CAPACITY_WEIGHTS = {"bike": (85, 15, 0), "scooter": (65, 30, 5), "car": (40, 40, 20)}
OFFLINE_SHARE = 0.2
# On duty: last location this many seconds before the anchor, well inside the TTL.
FRESH_SECONDS = (3, 150)
# Offline: last location a quarter of an hour to three days before the anchor.
STALE_SECONDS = (15 * 60, 3 * 86_400)
# Couriers join at most this many days before the catalog's fixed date (BASE_TIME).
JOINED_DAYS = 600

DEMO_CAPACITY = 2
# The demo courier is the one people try out: it has the longest before it turns stale.
DEMO_FRESH_SECONDS = (2, 15)
DEMO_DISTANCE_M = (150.0, 800.0)
# How far from the shop a courier with one of its orders is, in metres: on the way to
# it (ready) or riding away from it (picked_up).
NEAR_SHOP_M = {"ready": (200.0, 2500.0), "picked_up": (100.0, 1500.0)}
READY_WITH_COURIER = 0.5

COURIER_COLUMNS = (
    "id",
    "name",
    "vehicle",
    "status",
    "location",
    "location_updated_at",
    "capacity",
    "created_at",
    "user_id",
)

_TICK = 1000


@dataclass
class _Courier:
    first_name: str
    last_name: str
    vehicle: str
    capacity: int
    on_duty: bool
    lat: float
    lng: float
    # Seconds before the anchor of the last location.
    seen_ago: int
    created_at: datetime
    joined_at: datetime
    orders: int = 0


def _courier_username(index: int) -> str:
    """`courier-00002` on: the demo courier is the first courier, as owners count."""
    return f"courier-{index + 1:05d}"


def _anchor(ctx: SeedContext) -> datetime:
    options = ctx.options
    if options.orders_until_is_now:
        return max(options.orders_until, datetime.now(UTC).replace(microsecond=0))
    return options.orders_until


def _near(
    *, ctx: SeedContext, rng: random.Random, lat: float, lng: float, reach: tuple[float, float]
) -> tuple[float, float]:
    """A point `reach` metres from (lat, lng) that stays inside the city's circle.

    Shops near the rim would push some points out: those are drawn again, and after a
    few misses the courier waits at the shop itself, which is inside.
    """
    options = ctx.options
    # A metre of margin covers the flat-patch distance's error (a few mm per km).
    limit = options.radius_m - 1.0
    for _ in range(20):
        point = geodesic_destination(
            lat=lat, lng=lng, bearing_deg=rng.uniform(0, 360), distance_m=rng.uniform(*reach)
        )
        distance = local_distance_m(
            lat1=options.center_lat, lng1=options.center_lng, lat2=point[0], lng2=point[1]
        )
        if distance < limit:
            return point
    return lat, lng


def _couriers_plan(*, ctx: SeedContext, rng: random.Random) -> list[_Courier]:
    """Every courier as drawn, the demo courier first; orders come later."""
    options = ctx.options
    couriers: list[_Courier] = []
    for index in range(options.couriers):
        if index == 0:
            lat, lng = geodesic_destination(
                lat=options.center_lat,
                lng=options.center_lng,
                bearing_deg=rng.uniform(0, 360),
                distance_m=min(rng.uniform(*DEMO_DISTANCE_M), options.radius_m / 2),
            )
            couriers.append(
                _Courier(
                    first_name="Demo",
                    last_name="Courier",
                    vehicle="bike",
                    capacity=DEMO_CAPACITY,
                    on_duty=True,
                    lat=lat,
                    lng=lng,
                    seen_ago=rng.randint(*DEMO_FRESH_SECONDS),
                    created_at=ctx.base_time - timedelta(days=900),
                    joined_at=ctx.base_time - timedelta(days=1000),
                )
            )
            continue
        vehicle = rng.choices(VEHICLES, weights=VEHICLE_WEIGHTS)[0]
        capacity = rng.choices((1, 2, 3), weights=CAPACITY_WEIGHTS[vehicle])[0]
        on_duty = rng.random() >= OFFLINE_SHARE
        lat, lng = scattered_point(
            rng=rng, lat=options.center_lat, lng=options.center_lng, radius_m=options.radius_m
        )
        created_at = ctx.base_time - timedelta(seconds=rng.randint(0, JOINED_DAYS * 86_400))
        couriers.append(
            _Courier(
                first_name=rng.choice(content.FIRST_NAMES),
                last_name=rng.choice(content.LAST_NAMES),
                vehicle=vehicle,
                capacity=capacity,
                on_duty=on_duty,
                lat=lat,
                lng=lng,
                seen_ago=rng.randint(*(FRESH_SECONDS if on_duty else STALE_SECONDS)),
                created_at=created_at,
                joined_at=created_at - timedelta(seconds=rng.randint(600, 14 * 86_400)),
            )
        )
    return couriers


def _orders_hand_out(
    *, ctx: SeedContext, rng: random.Random, couriers: list[_Courier], first_id: int
) -> list[tuple[int, int]]:
    """(order id, courier id) for the in-flight orders that have a courier.

    The demo courier takes the demo customer's order; picked-up orders and about half
    of the ready ones go to on-duty couriers in a shuffled order, one each, who move near
    the shop. When the couriers run out, the rest wait for dispatch.
    """
    assignments: list[tuple[int, int]] = []
    if not couriers:
        return assignments
    free = [index for index in range(1, len(couriers)) if couriers[index].on_duty]
    rng.shuffle(free)
    free.reverse()  # taken from the end
    for order in ctx.live_orders:
        if order.is_demo_customers:
            couriers[0].orders += 1
            assignments.append((order.id, first_id))
            continue
        if order.status == "picked_up":
            wanted = True
        elif order.status == "ready":
            wanted = rng.random() < READY_WITH_COURIER
        else:
            wanted = False
        if not wanted or not free:
            continue
        index = free.pop()
        courier = couriers[index]
        courier.lat, courier.lng = _near(
            ctx=ctx, rng=rng, lat=order.lat, lng=order.lng, reach=NEAR_SHOP_M[order.status]
        )
        courier.orders += 1
        assignments.append((order.id, first_id + index))
    return assignments


def _status(courier: _Courier) -> str:
    if not courier.on_duty:
        return CourierStatus.OFFLINE.value
    if courier.orders >= courier.capacity:
        return CourierStatus.BUSY.value
    return CourierStatus.AVAILABLE.value


def _usernames_check(ctx: SeedContext, usernames: Sequence[str]) -> None:
    # One array parameter: a million names would overflow a list of placeholders.
    ctx.cursor.execute(
        f"SELECT username FROM {connection.ops.quote_name(User._meta.db_table)} "  # noqa: S608
        "WHERE username = ANY(%s) ORDER BY username LIMIT 3",
        [list(usernames)],
    )
    taken = [username for (username,) in ctx.cursor.fetchall()]
    if taken:
        raise SeedRefused(
            f"Users named like the seed's couriers already exist ({', '.join(taken)}, ...); "
            "seed an empty database."
        )


def couriers_seed(ctx: SeedContext) -> None:
    """Couriers with their users, the demo courier's token, and couriers on orders."""
    total = ctx.options.couriers
    ctx.progress.start(label="couriers", total=total)
    if not total:
        ctx.progress.finish()
        return
    rng = ctx.rng("couriers")
    usernames = [DEMO_COURIER] + [_courier_username(index) for index in range(1, total)]
    _usernames_check(ctx, usernames)
    user_first = ids_reserve(ctx=ctx, model=User, count=total)
    courier_first = ids_reserve(ctx=ctx, model=Courier, count=total)
    couriers = _couriers_plan(ctx=ctx, rng=rng)
    assignments = _orders_hand_out(ctx=ctx, rng=rng, couriers=couriers, first_id=courier_first)
    anchor = _anchor(ctx)

    def users() -> Iterator[tuple]:
        for index, (username, courier) in enumerate(zip(usernames, couriers, strict=True)):
            yield user_row(
                user_id=user_first + index,
                username=username,
                first_name=courier.first_name,
                last_name=courier.last_name,
                joined_at=courier.joined_at,
                password=make_password(DEMO_PASSWORD) if index == 0 else None,
            )

    def rows() -> Iterator[Sequence[Any]]:
        for index, courier in enumerate(couriers):
            if index % _TICK == 0:
                ctx.progress.advance(min(_TICK, total - index))
            yield (
                courier_first + index,
                f"{courier.first_name} {courier.last_name}",
                courier.vehicle,
                _status(courier),
                point_ewkt(lat=courier.lat, lng=courier.lng),
                anchor - timedelta(seconds=courier.seen_ago),
                courier.capacity,
                courier.created_at,
                user_first + index,
            )

    users_copy(ctx=ctx, count_as="users", rows=users())
    copy_rows(ctx=ctx, model=Courier, count_as="couriers", columns=COURIER_COLUMNS, rows=rows())
    # Seeded orders keep their times: taking a courier on changes no status.
    orders_courier_set(assignments=assignments, touch_updated_at=False)
    ctx.counts["orders with a courier"] = len(assignments)

    token = Token.objects.create(key=Token.generate_key(), user_id=user_first)
    ctx.counts["API tokens"] = ctx.counts.get("API tokens", 0) + 1
    demo_order = next((order for order, courier in assignments if courier == courier_first), None)
    ctx.demo_accounts.append(
        DemoAccount(
            role="courier",
            username=DEMO_COURIER,
            password=DEMO_PASSWORD,
            user_id=user_first,
            token=token.key,
            note=f"courier {courier_first} near the centre"
            + (f", assigned order {demo_order}" if demo_order is not None else ""),
        )
    )
    ctx.progress.finish()
