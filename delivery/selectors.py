import functools
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from delivery.models import Courier
from delivery.shapes import TRACK_POINT
from geomarket.api.json_pages import CompiledJsonPages
from geomarket.api.pagination import CountedPage
from geomarket.sql import fetch_dicts, fetch_value, point_ewkt
from orders.models import ACTIVE_DELIVERY_STATUSES, Order
from orders.selectors import COURIER_ACTIVE_ORDERS_SQL, order_rows
from orders.shapes import ORDER


def courier_list(*, status: str | None = None) -> QuerySet[Courier]:
    couriers = Courier.objects.annotate(
        active_orders=Count("orders", filter=Q(orders__status__in=ACTIVE_DELIVERY_STATUSES))
    ).order_by("id")
    if status:
        couriers = couriers.filter(status=status)
    return couriers


def courier_get(*, courier_id: int) -> Courier | None:
    return courier_list().filter(pk=courier_id).first()


def courier_of_user(*, user) -> Courier | None:
    return courier_list().filter(user=user).first()


def courier_open_orders(*, courier_id: int) -> QuerySet[Order]:
    return Order.objects.filter(
        courier_id=courier_id, status__in=ACTIVE_DELIVERY_STATUSES
    ).order_by("created_at", "id")


# Stands in for the courier's id in its compiled orders page: never a courier's id.
_COURIER_STAND_IN = -7_300_101


@functools.cache
def _courier_order_pages() -> CompiledJsonPages:
    return CompiledJsonPages(
        ORDER,
        courier_open_orders(courier_id=_COURIER_STAND_IN),
        rows=order_rows,
        slots={"courier": _COURIER_STAND_IN},
    )


def courier_order_page(*, courier_id: int, offset: int, limit: int) -> CountedPage:
    """Page `offset`, `limit` of the courier's open orders as its JSON text (`ORDER`
    objects), and the count of all of them."""
    return _courier_order_pages().read(offset=offset, limit=limit, courier=courier_id)


def fresh_since():
    return timezone.now() - timedelta(seconds=settings.COURIER_LOCATION_TTL)


# Candidates for one pickup point: available couriers with a fresh location and a free
# slot. The GiST index walk in `<->` order inside the exact ST_DWithin radius keeps the
# scan to the nearest couriers; only the returned rows get the exact spheroid distance.
COURIER_CANDIDATES_SQL = f"""
SELECT c.id, c.name, c.vehicle, c.capacity, c.active_orders,
       ST_Distance(c.location, %(point)s::geography) AS distance_m
FROM (
    SELECT cc.id, cc.name, cc.vehicle, cc.capacity, cc.location,
           ({COURIER_ACTIVE_ORDERS_SQL.format(courier="cc.id")}) AS active_orders
    FROM delivery_courier cc
    WHERE cc.status = 'available'
      AND cc.location_updated_at >= %(fresh_since)s
      AND ST_DWithin(cc.location, %(point)s::geography, %(radius)s)
    ORDER BY cc.location <-> %(point)s::geography
) c
WHERE c.active_orders < c.capacity
LIMIT %(limit)s
"""  # noqa: S608 - only orders' fixed fragment is interpolated


def courier_candidates(*, lat: float, lng: float, limit: int, radius_m: float) -> list[dict]:
    rows = fetch_dicts(
        COURIER_CANDIDATES_SQL,
        {
            "point": point_ewkt(lat=lat, lng=lng),
            "active": list(ACTIVE_DELIVERY_STATUSES),
            "fresh_since": fresh_since(),
            "radius": radius_m,
            "limit": limit,
        },
    )
    # The walk is by sphere distance; the answer is ordered by the exact one.
    rows.sort(key=lambda row: (row["distance_m"], row["id"]))
    return rows


TRACK_POINTS_MAX = 10_000
TRACK_DEFAULT_WINDOW = timedelta(hours=24)

# A courier's points in a window, in time order (ties in a fixed order, the same for the
# points and the line), with the length of the whole window's path (PostGIS on geography,
# so on the WGS84 spheroid, to the millimetre), rendered as the answer's JSON text.
COURIER_TRACK_JSON_SQL = f"""
WITH w AS MATERIALIZED (
    SELECT recorded_at, location, heading, speed_mps, accuracy_m,
           row_number() OVER (ORDER BY recorded_at, ST_X(location::geometry),
                              ST_Y(location::geometry)) AS n
    FROM delivery_courierping
    WHERE courier_id = %(courier)s AND recorded_at >= %(since)s AND recorded_at <= %(until)s
)
SELECT '{{"points":['
    || COALESCE((SELECT string_agg({TRACK_POINT.json_sql(alias="w")}, ',' ORDER BY n)
                 FROM w WHERE n <= %(limit)s), '')
    || '],"distance_m":'
    || (SELECT round(COALESCE(ST_Length(ST_MakeLine(location::geometry ORDER BY n)::geography),
                              0)::numeric, 3)::text
        FROM w)
    || ',"truncated":'
    || CASE WHEN EXISTS (SELECT FROM w WHERE n > %(limit)s) THEN 'true' ELSE 'false' END
    || '}}'
"""  # noqa: S608 - only a declared shape is interpolated


def courier_track_json(*, courier_id: int, since, until) -> str:
    """The track's answer as JSON text: the first `TRACK_POINTS_MAX` points of the window,
    the window's path length, and whether it held more."""
    return fetch_value(
        COURIER_TRACK_JSON_SQL,
        {"courier": courier_id, "since": since, "until": until, "limit": TRACK_POINTS_MAX},
    )
