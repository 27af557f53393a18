"""Couriers: profiles, live locations, and assigning waiting orders to them."""

import functools
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from delivery.eta import order_eta_seconds
from delivery.models import Courier, CourierStatus
from delivery.selectors import fresh_since, geodesic_pairs, owners_seeing
from delivery.serializers import StreamEtaSerializer, StreamLocationSerializer
from delivery.shapes import COURIER
from events.models import EventType
from events.services import EVENT_INSERT_SQL
from events.streams import CourierMove, StreamEntry, ping_streams_publish
from geomarket.accounts.selectors import token_holder_sql
from geomarket.errors import Conflict, DomainError, NotFound
from geomarket.services import model_update, unique_claim
from geomarket.shapes import Coordinates
from geomarket.sql import fetch_all, literal_sql
from orders.models import ACTIVE_DELIVERY_STATUSES, Order, OrderStatus
from orders.selectors import (
    COURIER_ACTIVE_ORDERS_SQL,
    COURIER_ORDER_POINTS_SQL,
    ORDER_PICKUPS_SQL,
    courier_active_order_counts,
    orders_waiting_lock,
)
from orders.services import orders_courier_set

MAX_ORDERS_PER_ASSIGNMENT = 1000
TRACK_PARTITIONS_AHEAD_DAYS = 7


class OrderNotWaiting(Conflict):
    code = "order_not_waiting"
    default_message = (
        "The order is not waiting for a courier (confirmed, preparing or ready, with none"
        " assigned), so it has no courier candidates."
    )


@transaction.atomic
def courier_create(
    *, user, name: str, vehicle: str, capacity: int = 1, status: str = CourierStatus.OFFLINE
) -> Courier:
    """A user's courier profile; a user that has one is a 400, whether it was there before
    or a concurrent create committed it first (`unique_claim`)."""
    taken = Courier.objects.filter(user=user).exists
    refusal = DomainError("This user already has a courier profile.", field="user_id")
    if taken():
        raise refusal
    with unique_claim(taken=taken, refusal=refusal):
        return Courier.objects.create(
            user=user, name=name, vehicle=vehicle, capacity=capacity, status=status
        )


@transaction.atomic
def courier_update(*, courier: Courier, data: dict) -> Courier:
    courier = model_update(instance=courier, data=data)
    if "capacity" in data or data.get("status") == CourierStatus.AVAILABLE:
        # Busy is at capacity: a new capacity, or a courier made available with a full
        # load, is squared with the orders it carries.
        courier_status_refresh(courier_id=courier.pk)
        courier.refresh_from_db(fields=["status"])
    return courier


# One statement, one round trip: pings are the busiest write. The point goes into the
# track whatever its time; the courier moves only when the point is not older than the
# one it has, so a late ping (sent again after a network gap) never takes it back.
# `recorded_at` defaults to the statement's time; a device clock a little ahead (the
# serializer allows some skew) never dates the courier's location in the future, but the
# device's own time is kept to order the next ping by (a point set without one, by a seed
# or a fixture, is compared by location_updated_at).
# A courier that moved is tested against its active orders' geofences: within
# `GEOFENCE_MERCHANT_M` of the merchant before pickup, `GEOFENCE_ARRIVING_M` of the
# delivery point after it. Each fires once per order (the crossing's unique key), its
# event written by the same statement, so it exists if and only if the ping does. The
# statement also answers the active orders of a courier that moved, with their statuses
# and the distances of their estimates (on the spheroid): their live streams get the new
# point and estimate. It answers the courier as its answer shows it, and its active orders'
# merchants, for the couriers' stream (the console's), which gets every move.
_PING_SQL = f"""
WITH courier AS (
    SELECT id, location_updated_at, vehicle, user_id, name, status, capacity
    FROM delivery_courier WHERE user_id = (:user)
), ping AS (
    INSERT INTO delivery_courierping
        (courier_id, recorded_at, location, heading, speed_mps, accuracy_m)
    SELECT id, COALESCE(%(recorded_at)s, statement_timestamp()),
           ST_SetSRID(ST_MakePoint(%(lng)s, %(lat)s), 4326)::geography,
           %(heading)s, %(speed_mps)s, %(accuracy_m)s
    FROM courier
    RETURNING courier_id, recorded_at, location
), moved AS (
    UPDATE delivery_courier c
    SET location = ping.location,
        location_updated_at = LEAST(ping.recorded_at, statement_timestamp()),
        location_recorded_at = ping.recorded_at
    FROM ping
    WHERE c.id = ping.courier_id
      AND (c.location_updated_at IS NULL
           OR GREATEST(c.location_recorded_at, c.location_updated_at) <= ping.recorded_at)
    RETURNING c.id, c.location, c.location_updated_at
), active AS (
    SELECT o.*, moved.id AS courier_id, moved.location,
           ST_Distance(moved.location, o.pickup) AS to_pickup,
           ST_Distance(o.pickup, o.dropoff) AS pickup_to_dropoff,
           ST_Distance(moved.location, o.dropoff) AS to_dropoff
    FROM moved
    CROSS JOIN LATERAL ({COURIER_ORDER_POINTS_SQL.format(courier="moved.id")}) o
), fence AS (
    SELECT o.id AS order_id, o.merchant_id, o.courier_id,
           CASE WHEN o.status = 'picked_up' THEN %(arriving)s ELSE %(arrived)s END AS type
    FROM active o
    WHERE CASE WHEN o.status = 'picked_up'
               THEN ST_DWithin(o.location, o.dropoff, %(arriving_m)s)
               ELSE ST_DWithin(o.location, o.pickup, %(merchant_m)s) END
), crossed AS (
    INSERT INTO delivery_geofencecrossing (order_id, type, courier_id, crossed_at)
    SELECT order_id, type, courier_id, statement_timestamp() FROM fence
    ON CONFLICT (order_id, type) DO NOTHING
    RETURNING order_id, type
), recorded AS (
    {EVENT_INSERT_SQL}
    SELECT f.type, statement_timestamp(), f.merchant_id, f.order_id,
           jsonb_build_object('courier_id', f.courier_id)
    FROM crossed JOIN fence f USING (order_id, type)
)
SELECT courier.id, ping.recorded_at, (SELECT location_updated_at FROM moved),
       courier.location_updated_at, courier.vehicle, courier.user_id, courier.name,
       courier.status, courier.capacity, ARRAY(SELECT merchant_id FROM active),
       ARRAY(SELECT id FROM active), ARRAY(SELECT status FROM active),
       ARRAY(SELECT to_pickup FROM active), ARRAY(SELECT pickup_to_dropoff FROM active),
       ARRAY(SELECT to_dropoff FROM active), ARRAY(SELECT learned_prep_time_s FROM active)
FROM courier CROSS JOIN ping
"""  # noqa: S608 - only fixed fragments are interpolated


@functools.cache
def _ping_sql(user: str, merchant_m: float, arriving_m: float) -> str:
    """The ping statement for the courier of the user `user` (SQL), its constants written
    in: a ping sends only its own values, which psycopg adapts on every call."""
    constants = {
        "active": list(ACTIVE_DELIVERY_STATUSES),
        "arrived": EventType.COURIER_ARRIVED_AT_MERCHANT.value,
        "arriving": EventType.COURIER_ARRIVING.value,
        "merchant_m": merchant_m,
        "arriving_m": arriving_m,
    }
    sql = _PING_SQL.replace("(:user)", f"({user})")
    for name, value in constants.items():
        sql = sql.replace(f"%({name})s", literal_sql("%s", [value]))
    return sql


def _ping_statement(*, user: str, **ping) -> tuple[str, dict]:
    sql = _ping_sql(user, settings.GEOFENCE_MERCHANT_M, settings.GEOFENCE_ARRIVING_M)
    return sql, _ping_params(**ping)


def _ping_params(
    *,
    lat: float,
    lng: float,
    heading: float | None = None,
    speed_mps: float | None = None,
    accuracy_m: float | None = None,
    recorded_at: datetime | None = None,
) -> dict:
    return {
        "lat": lat,
        "lng": lng,
        "heading": _as_real(heading),
        "speed_mps": _as_real(speed_mps),
        "accuracy_m": _as_real(accuracy_m),
        "recorded_at": recorded_at,
    }


# A `real` (float4), as PostgreSQL stores it, and its smallest normal value.
_REAL = struct.Struct("f")
_REAL_MIN_NORMAL = 2.0**-126


def _as_real(value: float | None) -> float | None:
    """`value` as a `real` column (the track's heading, speed and accuracy) can take it.
    Below the smallest normal real it is rounded here: 1e-50, which the serializer's
    bounds allow but 4 bytes cannot hold, goes as 0, where PostgreSQL would refuse it and
    the ping fail with a 400. Larger values go as they are, for PostgreSQL to round."""
    if value is None or abs(value) >= _REAL_MIN_NORMAL:
        return value
    return _REAL.unpack(_REAL.pack(value))[0]


def courier_ping_by_token_statement(*, key: str, **ping) -> tuple[str, dict]:
    """`courier_ping`'s statement for the courier whose active user holds the API token
    `key`, for a caller that authenticates inside the statement (the event-loop lane).
    Its row goes to `courier_ping_outcome`; no row means nothing was written."""
    # The caller is checked inside the statement: a key no active user holds, or a user
    # without a courier profile, matches no courier, so nothing is written.
    sql, params = _ping_statement(user=token_holder_sql(), **ping)
    return sql, {**params, "key": key}


def courier_ping_outcome(
    row: tuple, *, lat: float, lng: float
) -> tuple[dict, list[StreamEntry | CourierMove]]:
    """A ping statement's row read: the answer, and the entries for the live streams (to
    publish once the ping has committed): of a courier that moved, the couriers' stream's
    and those of the orders it carries."""
    (
        courier_id,
        recorded_at,
        moved_at,
        location_updated_at,
        vehicle,
        user_id,
        name,
        status,
        capacity,
        merchant_ids,
        order_ids,
        *per_order,
    ) = row
    entries: list[StreamEntry | CourierMove] = []
    if moved_at is not None:
        location_updated_at = moved_at
        courier = COURIER.render(
            (
                courier_id,
                user_id,
                name,
                vehicle,
                status,
                Coordinates(lng, lat),
                moved_at,
                capacity,
                len(order_ids),
            )
        )
        entries.append(
            CourierMove(
                courier=courier,
                merchant_ids=owners_seeing(merchant_ids=merchant_ids, statuses=per_order[0]),
            )
        )
    if order_ids:
        location = StreamLocationSerializer(
            {
                "courier_id": courier_id,
                "location": Point(lng, lat, srid=4326),
                "recorded_at": recorded_at,
            }
        ).data
        for order_id, status, to_pickup, pickup_to_dropoff, to_dropoff, learned in zip(
            order_ids, *per_order, strict=True
        ):
            eta_s = order_eta_seconds(
                status=status,
                merchant_to_point_m=pickup_to_dropoff,
                vehicle=vehicle,
                courier_to_merchant_m=to_pickup,
                courier_to_point_m=to_dropoff,
                learned_prep_time_s=learned,
            )
            entries += [
                StreamEntry(order_id=order_id, event="location", status=status, data=location),
                StreamEntry(
                    order_id=order_id,
                    event="eta",
                    status=status,
                    data=StreamEtaSerializer({"eta_s": eta_s}).data,
                ),
            ]
    answer = {
        "courier_id": courier_id,
        "lat": lat,
        "lng": lng,
        "recorded_at": recorded_at,
        "location_updated_at": location_updated_at,
    }
    return answer, entries


def courier_ping(
    *,
    user,
    lat: float,
    lng: float,
    heading: float | None = None,
    speed_mps: float | None = None,
    accuracy_m: float | None = None,
    recorded_at: datetime | None = None,
) -> dict:
    """Keep the point in the courier's track and, unless it is late, make it the
    courier's current location and record the geofences it enters."""
    sql, params = _ping_statement(
        user="%(user)s",
        lat=lat,
        lng=lng,
        heading=heading,
        speed_mps=speed_mps,
        accuracy_m=accuracy_m,
        recorded_at=recorded_at,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "user": user.pk})
        row = cursor.fetchone()
    if row is None:
        raise NotFound("You have no courier profile.")
    answer, entries = courier_ping_outcome(row, lat=lat, lng=lng)
    if entries:
        transaction.on_commit(partial(ping_streams_publish, entries=entries))
    return answer


def courier_track_partitions_maintain() -> dict:
    """Track partitions from yesterday to a week ahead (pings of days without one land in
    the default partition meanwhile), and the days past retention dropped whole."""
    today = timezone.now().astimezone(UTC).date()
    before = timezone.now() - timedelta(days=settings.COURIER_TRACK_RETENTION_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT delivery_courierping_partitions_ensure(%s, %s), delivery_courierping_prune(%s)",
            [today - timedelta(days=1), TRACK_PARTITIONS_AHEAD_DAYS + 2, before],
        )
        created, dropped = cursor.fetchone()
    return {"created": created, "dropped": dropped}


def couriers_mark_stale_offline() -> int:
    """Couriers whose last location is older than the TTL go offline."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE delivery_courier SET status = 'offline'
            WHERE status <> 'offline'
              AND (location_updated_at IS NULL OR location_updated_at < %s)
            """,
            [fresh_since()],
        )
        return cursor.rowcount


_STATUS_REFRESH_SQL = f"""
UPDATE delivery_courier c
SET status = CASE WHEN active.count >= c.capacity THEN 'busy' ELSE 'available' END
FROM ({COURIER_ACTIVE_ORDERS_SQL.format(courier="%(id)s")}) active
WHERE c.id = %(id)s AND c.status <> 'offline'
"""  # noqa: S608 - only orders' fixed fragment is interpolated


def courier_status_refresh(*, courier_id: int) -> None:
    """Busy at capacity, available again below it; offline couriers stay offline."""
    with connection.cursor() as cursor:
        cursor.execute(
            _STATUS_REFRESH_SQL, {"id": courier_id, "active": list(ACTIVE_DELIVERY_STATUSES)}
        )


def courier_order_transitioned(*, order: Order, from_status: str, to_status: str) -> None:
    """An order's courier may take another once it is delivered, cancelled or failed:
    called by `order_transition` (settings.HOOKS), in its transaction."""
    if order.courier_id is not None and to_status in (
        OrderStatus.DELIVERED,
        OrderStatus.CANCELLED,
        OrderStatus.FAILED,
    ):
        courier_status_refresh(courier_id=order.courier_id)


@dataclass(frozen=True)
class AssignmentResult:
    assignments: list[dict]
    unassigned: list[int]
    total_distance_m: float


# The pickup point of each order of `%(orders)s`, as longitude and latitude.
PICKUP_COORDINATES_SQL = f"""
SELECT o.id, ST_X(o.location::geometry), ST_Y(o.location::geometry)
FROM ({ORDER_PICKUPS_SQL}) o
"""  # noqa: S608 - only orders' fixed fragment is interpolated

# Available, fresh couriers within reach of a pickup point of `%(orders)s`, locked by id
# with SKIP LOCKED, with their capacity and point. The pickup points are few;
# materialising them first lets each courier be tested against them through ST_DWithin
# instead of walking orders per courier.
COURIERS_LOCK_SQL = f"""
WITH pickup AS MATERIALIZED (
    SELECT DISTINCT ON (o.merchant_id) o.location FROM ({ORDER_PICKUPS_SQL}) o
)
SELECT c.id, c.capacity, ST_X(c.location::geometry), ST_Y(c.location::geometry)
FROM delivery_courier c
WHERE c.status = 'available' AND c.location_updated_at >= %(fresh)s
  AND EXISTS (
    SELECT 1 FROM pickup p WHERE ST_DWithin(c.location, p.location, %(reach)s))
ORDER BY c.id
FOR UPDATE OF c SKIP LOCKED
"""  # noqa: S608 - only orders' fixed fragment is interpolated

# Couriers given orders become busy once their active orders fill their capacity.
COURIERS_FILLED_SQL = f"""
UPDATE delivery_courier c SET status = 'busy'
WHERE c.id = ANY(%(ids)s) AND c.capacity <= ({COURIER_ACTIVE_ORDERS_SQL.format(courier="c.id")})
"""  # noqa: S608 - only orders' fixed fragment is interpolated


@transaction.atomic
def orders_assign_priority(
    *, order_ids: list[int] | None = None, max_distance_m: float | None = None
) -> AssignmentResult:
    """Give waiting orders to couriers, minimising the total pickup distance.

    1. Lock waiting orders (`confirmed|preparing|ready`, no courier) and then available,
       fresh couriers, each by id and with SKIP LOCKED: a concurrent call works on what
       this one has not taken, so no order is assigned twice and no courier overfilled.
    2. Give each courier as many slots as it has free capacity. Oldest order first: the
       orders assigned are taken oldest first, each when it can have a courier within
       `max_distance_m` together with those taken before it.
    3. Solve the min-cost assignment exactly (`delivery.assignment`), with the geodesic
       distances of the pairs it needs only.
    4. Record the couriers on the orders; couriers at capacity become busy.

    Unknown `order_ids` are refused before anything is locked. Those that are not waiting
    (given a courier, over, or held by a concurrent call, which may assign them) are not
    this call's to answer: `unassigned` lists the waiting orders it found no courier for.
    """
    reach = max_distance_m or settings.DISPATCH_MAX_DISTANCE_M
    asked = None if order_ids is None else list(dict.fromkeys(order_ids))
    if asked:
        known = set(Order.objects.filter(pk__in=asked).values_list("pk", flat=True))
        if unknown := [order_id for order_id in asked if order_id not in known]:
            raise DomainError(f"Unknown orders: {unknown}.", field="order_ids")
    orders = sorted(
        orders_waiting_lock(order_ids=asked, limit=MAX_ORDERS_PER_ASSIGNMENT),
        key=lambda row: (row[1], row[0]),
    )
    if not orders:
        return AssignmentResult([], [], 0.0)
    order_pks = [row[0] for row in orders]
    locked = fetch_all(
        COURIERS_LOCK_SQL, {"fresh": fresh_since(), "orders": order_pks, "reach": reach}
    )
    # Counted in a statement of its own, after the locks: a statement's snapshot is
    # taken when it starts, so counting inside the locking query could miss orders
    # that a concurrent assignment gave these couriers just before releasing them.
    active = courier_active_order_counts(courier_ids=[row[0] for row in locked])
    couriers = [row for row in locked if row[1] > active.get(row[0], 0)]
    assignments = _assignments(orders=order_pks, couriers=couriers, active=active, reach=reach)
    if assignments:
        orders_courier_set(assignments=[(a["order_id"], a["courier_id"]) for a in assignments])
        with connection.cursor() as cursor:
            cursor.execute(
                COURIERS_FILLED_SQL,
                {
                    "ids": sorted({a["courier_id"] for a in assignments}),
                    "active": list(ACTIVE_DELIVERY_STATUSES),
                },
            )
    assigned = {a["order_id"] for a in assignments}
    oldest_first = {order_id: position for position, order_id in enumerate(order_pks)}
    assignments.sort(key=lambda a: oldest_first[a["order_id"]])
    return AssignmentResult(
        assignments=assignments,
        unassigned=[order_id for order_id in order_pks if order_id not in assigned],
        total_distance_m=round(sum(a["distance_m"] for a in assignments), 2),
    )


def _assignments(
    *, orders: list[int], couriers: list[tuple], active: dict[int, int], reach: float
) -> list[dict]:
    """The optimal assignment (`delivery.assignment`) of `orders` (ids, oldest first) to
    `couriers` (`COURIERS_LOCK_SQL` rows with free slots), as the answer's rows."""
    if not couriers:
        return []
    # Imported here: numpy and scipy take about 0.9 s to import, which every process
    # that loads the URLs or the tasks (each web worker, Celery worker, manage.py
    # command) would otherwise pay at start, for the one function that uses them.
    import numpy as np

    from delivery.assignment import assignment_solve, earth_centred

    pickup = {row[0]: row[1:] for row in fetch_all(PICKUP_COORDINATES_SQL, {"orders": orders})}
    order_points = [pickup[order_id] for order_id in orders]
    courier_points = [row[2:] for row in couriers]

    def distances(rows: np.ndarray, columns: np.ndarray) -> list[float]:
        return geodesic_pairs(
            points_from=order_points,
            points_to=courier_points,
            pairs=list(zip(rows.tolist(), columns.tolist(), strict=True)),
        )

    solved = assignment_solve(
        pickups=earth_centred(*np.array(order_points).T),
        couriers=earth_centred(*np.array(courier_points).T),
        free=[capacity - active.get(courier_id, 0) for courier_id, capacity, *_ in couriers],
        reach=reach,
        distances=distances,
    )
    return [
        {
            "order_id": order_id,
            "courier_id": couriers[column][0],
            "distance_m": round(float(distance), 2),
        }
        for order_id, column, distance in zip(
            orders, solved.courier.tolist(), solved.distance_m.tolist(), strict=True
        )
        if column >= 0
    ]
