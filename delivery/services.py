"""Couriers: profiles, live locations, and assigning waiting orders to them."""

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from delivery.eta import order_eta_seconds
from delivery.models import Courier, CourierStatus
from delivery.selectors import fresh_since
from delivery.serializers import StreamEtaSerializer, StreamLocationSerializer
from events.models import EventType
from events.services import EVENT_INSERT_SQL
from events.streams import StreamEntry, order_streams_publish
from geomarket.accounts.selectors import token_holder_sql
from geomarket.errors import DomainError, NotFound
from geomarket.services import model_update
from geomarket.sql import literal_sql
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


@transaction.atomic
def courier_create(
    *, user, name: str, vehicle: str, capacity: int = 1, status: str = CourierStatus.OFFLINE
) -> Courier:
    if Courier.objects.filter(user=user).exists():
        raise DomainError("This user already has a courier profile.", field="user_id")
    return Courier.objects.create(
        user=user, name=name, vehicle=vehicle, capacity=capacity, status=status
    )


@transaction.atomic
def courier_update(*, courier: Courier, data: dict) -> Courier:
    return model_update(instance=courier, data=data)


# One statement, one round trip: pings are the busiest write. The point goes into the
# track whatever its time; the courier moves only when the point is not older than the
# one it has, so a late ping (sent again after a network gap) never takes it back.
# `recorded_at` defaults to the statement's time; a device clock a little ahead (the
# serializer allows some skew) never dates the courier's location in the future.
# A courier that moved is tested against its active orders' geofences: within
# `GEOFENCE_MERCHANT_M` of the merchant before pickup, `GEOFENCE_ARRIVING_M` of the
# delivery point after it. Each fires once per order (the crossing's unique key), its
# event written by the same statement, so it exists if and only if the ping does. The
# statement also answers the active orders of a courier that moved, with their statuses
# and the distances of their estimates (on the spheroid): their live streams get the new
# point and estimate.
_PING_SQL = f"""
WITH courier AS (
    SELECT id, location_updated_at, vehicle FROM delivery_courier WHERE user_id = (:user)
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
        location_updated_at = LEAST(ping.recorded_at, statement_timestamp())
    FROM ping
    WHERE c.id = ping.courier_id
      AND (c.location_updated_at IS NULL OR c.location_updated_at <= ping.recorded_at)
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
SELECT courier.id, ping.recorded_at,
       COALESCE((SELECT location_updated_at FROM moved), courier.location_updated_at),
       courier.vehicle, ARRAY(SELECT id FROM active), ARRAY(SELECT status FROM active),
       ARRAY(SELECT to_pickup FROM active), ARRAY(SELECT pickup_to_dropoff FROM active),
       ARRAY(SELECT to_dropoff FROM active)
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
        "heading": heading,
        "speed_mps": speed_mps,
        "accuracy_m": accuracy_m,
        "recorded_at": recorded_at,
    }


def courier_ping_by_token_statement(*, key: str, **ping) -> tuple[str, dict]:
    """`courier_ping`'s statement for the courier whose active user holds the API token
    `key`, for a caller that authenticates inside the statement (the event-loop lane).
    Its row goes to `courier_ping_outcome`; no row means nothing was written."""
    # The caller is checked inside the statement: a key no active user holds, or a user
    # without a courier profile, matches no courier, so nothing is written.
    sql, params = _ping_statement(user=token_holder_sql(), **ping)
    return sql, {**params, "key": key}


def courier_ping_outcome(row: tuple, *, lat: float, lng: float) -> tuple[dict, list[StreamEntry]]:
    """A ping statement's row read: the answer, and the entries for the live streams of
    the orders the courier carries (to publish once the ping has committed)."""
    courier_id, recorded_at, location_updated_at, vehicle, order_ids, *per_order = row
    entries = []
    if order_ids:
        location = StreamLocationSerializer(
            {
                "courier_id": courier_id,
                "location": Point(lng, lat, srid=4326),
                "recorded_at": recorded_at,
            }
        ).data
        for order_id, status, to_pickup, pickup_to_dropoff, to_dropoff in zip(
            order_ids, *per_order, strict=True
        ):
            eta_s = order_eta_seconds(
                status=status,
                merchant_to_point_m=pickup_to_dropoff,
                vehicle=vehicle,
                courier_to_merchant_m=to_pickup,
                courier_to_point_m=to_dropoff,
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
        transaction.on_commit(partial(order_streams_publish, entries=entries))
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


# Candidate pairs: every locked order's merchant against every locked courier within
# reach, found through the courier location index, with exact spheroid distances.
PAIRS_SQL = f"""
SELECT o.id, c.id, ST_Distance(o.location, c.location)
FROM ({ORDER_PICKUPS_SQL}) o
JOIN delivery_courier c
  ON c.id = ANY(%(couriers)s) AND ST_DWithin(c.location, o.location, %(reach)s)
"""  # noqa: S608 - only orders' fixed fragment is interpolated

# Available, fresh couriers within reach of a pickup point of `%(orders)s`, locked by id
# with SKIP LOCKED. The pickup points are few; materialising them first lets each courier
# be tested against them through ST_DWithin instead of walking orders per courier.
COURIERS_LOCK_SQL = f"""
WITH pickup AS MATERIALIZED (
    SELECT DISTINCT ON (o.merchant_id) o.location FROM ({ORDER_PICKUPS_SQL}) o
)
SELECT c.id, c.capacity
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
    2. Find every order-courier pair within `max_distance_m`, with exact distances.
    3. Give each courier as many slots as it has free capacity. When orders outnumber
       slots, the oldest orders that have a courier in reach take the slots.
    4. Solve the min-cost assignment (Hungarian method) over orders by slots.
    5. Record the couriers on the orders; couriers at capacity become busy.
    """
    reach = max_distance_m or settings.DISPATCH_MAX_DISTANCE_M
    orders = sorted(
        orders_waiting_lock(order_ids=order_ids, limit=MAX_ORDERS_PER_ASSIGNMENT),
        key=lambda row: (row[1], row[0]),
    )
    if not orders:
        return AssignmentResult([], [], 0.0)
    order_pks = [row[0] for row in orders]
    with connection.cursor() as cursor:
        cursor.execute(
            COURIERS_LOCK_SQL, {"fresh": fresh_since(), "orders": order_pks, "reach": reach}
        )
        capacity = dict(cursor.fetchall())
    # Counted in a statement of its own, after the locks: a statement's snapshot is
    # taken when it starts, so counting inside the locking query could miss orders
    # that a concurrent assignment gave these couriers just before releasing them.
    active = courier_active_order_counts(courier_ids=list(capacity))
    free = {courier_id: cap - active.get(courier_id, 0) for courier_id, cap in capacity.items()}
    free_slots = {courier_id: slots for courier_id, slots in free.items() if slots > 0}
    pairs: dict[int, dict[int, float]] = {}
    if free_slots:
        with connection.cursor() as cursor:
            cursor.execute(
                PAIRS_SQL, {"couriers": list(free_slots), "reach": reach, "orders": order_pks}
            )
            for order_id, courier_id, distance in cursor.fetchall():
                pairs.setdefault(order_id, {})[courier_id] = distance

    slots = [courier_id for courier_id, free in sorted(free_slots.items()) for _ in range(free)]
    reachable = [order_id for order_id in order_pks if order_id in pairs]
    chosen = reachable[: len(slots)]
    assignments: list[dict] = []
    if chosen:
        column_of = {}
        for column, courier_id in enumerate(slots):
            column_of.setdefault(courier_id, []).append(column)
        # Imported here: numpy and scipy take about 0.9 s to import, which every process
        # that loads the URLs or the tasks (each web worker, Celery worker, manage.py
        # command) would otherwise pay at start, for the one function that uses them.
        import numpy as np
        from scipy.optimize import linear_sum_assignment

        unreachable_cost = 1e12
        cost = np.full((len(chosen), len(slots)), unreachable_cost)
        for row, order_id in enumerate(chosen):
            for courier_id, distance in pairs[order_id].items():
                cost[row, column_of[courier_id]] = distance
        rows, columns = linear_sum_assignment(cost)
        for row, column in zip(rows, columns, strict=True):
            if cost[row, column] < unreachable_cost:
                assignments.append(
                    {
                        "order_id": chosen[row],
                        "courier_id": slots[column],
                        "distance_m": round(float(cost[row, column]), 2),
                    }
                )
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
