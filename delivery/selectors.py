import functools
import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from delivery.models import Courier
from delivery.shapes import COURIER, TRACK_POINT, TRACKED_COURIER
from geomarket.accounts.roles import OPERATOR, is_operator
from geomarket.api.json_pages import CompiledJsonPages
from geomarket.api.pagination import CountedPage
from geomarket.shapes import coordinates, point_of
from geomarket.sql import (
    CompiledPage,
    CompiledQuery,
    fetch_all,
    fetch_dicts,
    fetch_utf8,
    point_ewkt,
)
from orders.models import (
    ACTIVE_DELIVERY_STATUSES,
    COURIER_VISIBLE_WHILE,
    WAITING_FOR_COURIER,
    Order,
)
from orders.selectors import COURIER_ACTIVE_ORDERS_SQL, order_rows, orders_visible_to
from orders.shapes import ORDER


def _active_orders() -> Subquery:
    # Counted per courier by a probe of the active orders' index: a join grouped by
    # courier joins every courier's orders, and a page's count would group them all.
    counted = (
        Order.objects.filter(courier_id=OuterRef("pk"), status__in=ACTIVE_DELIVERY_STATUSES)
        .order_by()
        .annotate(count=Func(F("pk"), function="count"))
        .values("count")
    )
    return Subquery(counted, output_field=IntegerField())


def courier_list(*, status: str | None = None) -> QuerySet[Courier]:
    couriers = Courier.objects.annotate(active_orders=_active_orders()).order_by("id")
    if status:
        couriers = couriers.filter(status=status)
    return couriers


def courier_get(*, courier_id: int) -> Courier | None:
    return courier_list().filter(pk=courier_id).first()


def courier_of_user(*, user) -> Courier | None:
    return courier_list().filter(user=user).first()


# Stand in for a status and an id in the compiled reads of couriers' answers: never one.
_STATUS_STAND_IN = "\x00status"
_ID_STAND_IN = -7_000_002


def _answer_rows(couriers: QuerySet[Courier]) -> QuerySet:
    """`couriers` as rows of the courier answer's values (`courier_answers`), the location
    as its two coordinates."""
    x, y = coordinates("location")
    names = COURIER.names
    at = names.index("location")
    return couriers.annotate(location_x=x, location_y=y).values_list(
        *names[:at], "location_x", "location_y", *names[at + 1 :]
    )


def courier_answers(rows: Sequence[tuple]) -> list[dict]:
    """The answers of the couriers of `_answer_rows`' rows."""
    at = COURIER.names.index("location")
    return [
        COURIER.render((*row[:at], point_of(row[at], row[at + 1]), *row[at + 2 :])) for row in rows
    ]


# The list, the detail and the courier's own answer run the same SQL text each time:
# building and compiling the aggregate queryset costs more CPU than its statement.
@functools.cache
def _courier_pages(*, filtered: bool) -> CompiledPage:
    couriers = courier_list(status=_STATUS_STAND_IN if filtered else None)
    return CompiledPage(
        _answer_rows(couriers), slots={"status": _STATUS_STAND_IN} if filtered else {}
    )


def courier_page(*, offset: int, limit: int, status: str | None = None) -> CountedPage:
    """Rows `offset` to `offset + limit` of `courier_list` for `courier_answers`, with
    the count of all of them."""
    if status:
        return _courier_pages(filtered=True).read(offset=offset, limit=limit, status=status)
    return _courier_pages(filtered=False).read(offset=offset, limit=limit)


@functools.cache
def _courier_by(field: str) -> CompiledQuery:
    couriers = courier_list().filter(**{field: _ID_STAND_IN})
    return CompiledQuery(_answer_rows(couriers), slots={"id": _ID_STAND_IN})


def courier_answer(*, courier_id: int | None = None, user_id: int | None = None) -> dict | None:
    """The answer of the courier `courier_id`, or of the user `user_id`'s courier; None
    when there is none."""
    field, value = ("pk", courier_id) if user_id is None else ("user_id", user_id)
    compiled = _courier_by(field)
    rows = fetch_all(compiled.sql, compiled.params(id=value))
    return courier_answers(rows)[0] if rows else None


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


# Stand in for the caller and the order in the compiled pickup lookup: never one.
_CALLER_STAND_IN = -7_000_006
_ORDER_STAND_IN = -7_000_007


@functools.cache
def _pickup_compiled(*, operator: bool) -> CompiledQuery:
    # Compiled once for operators and once for everyone else, from the orders' own
    # visibility rule, asked for a caller standing in for either.
    held = dict(OPERATOR.fields) if operator else {}
    caller = SimpleNamespace(is_authenticated=True, pk=_CALLER_STAND_IN, **held)
    orders = orders_visible_to(user=caller).filter(pk=_ORDER_STAND_IN)
    slots = {"order": _ORDER_STAND_IN, **({} if operator else {"user": _CALLER_STAND_IN})}
    waiting = ExpressionWrapper(WAITING_FOR_COURIER, output_field=BooleanField())
    return CompiledQuery(
        orders.values_list("merchant_id", *coordinates("merchant__location"), waiting),
        slots=slots,
    )


def order_pickup(*, user, order_id: int) -> tuple[int, float, float, bool] | None:
    """The merchant of the order `order_id`, its point (longitude, latitude) and whether
    the order waits for a courier (`WAITING_FOR_COURIER`), if `user` sees the order
    (`orders_visible_to`)."""
    compiled = _pickup_compiled(operator=is_operator(user))
    found = fetch_all(compiled.sql, compiled.params(order=order_id, user=user.pk))
    return found[0] if found else None


def fresh_since():
    return timezone.now() - timedelta(seconds=settings.COURIER_LOCATION_TTL)


# Available couriers with a fresh location within `%(radius)s` of `%(point)s`, with their
# count of active orders: those with a free slot are candidates.
_CANDIDATES_SQL = f"""
SELECT cc.id, cc.name, cc.vehicle, cc.capacity, cc.location,
       ({COURIER_ACTIVE_ORDERS_SQL.format(courier="cc.id")}) AS active_orders
FROM delivery_courier cc
WHERE cc.status = 'available'
  AND cc.location_updated_at >= %(fresh_since)s
  AND ST_DWithin(cc.location, %(point)s::geography, %(radius)s)
"""  # noqa: S608 - only orders' fixed fragment is interpolated

# The `%(limit)s` candidates nearest to one pickup point on the spheroid, nearest first,
# ties by id. The GiST index walks in `<->` order, which is distance on a sphere: a
# courier in one direction can come before one in another that is nearer on the spheroid
# (at 52°N, 5,000 m east before 4,990 m north), so the walk's first `limit` are not the
# answer. Their farthest spheroid distance bounds it, though (as that of any `limit`
# candidates would; theirs is nearly the least): `limit` candidates lie within it, so the
# answer's do too. Those within it (an exact ST_DWithin, on the index again, with a
# millimetre more for rounding) are ranked by their exact distance.
COURIER_CANDIDATES_SQL = f"""
WITH walked AS MATERIALIZED (
    SELECT c.location FROM (
        {_CANDIDATES_SQL}
        ORDER BY cc.location <-> %(point)s::geography
    ) c
    WHERE c.active_orders < c.capacity
    LIMIT %(limit)s
), bound AS (
    SELECT max(ST_Distance(location, %(point)s::geography)) + 0.001 AS metres FROM walked
)
SELECT c.id, c.name, c.vehicle, c.capacity, c.active_orders,
       ST_Distance(c.location, %(point)s::geography) AS distance_m
FROM ({_CANDIDATES_SQL} AND ST_DWithin(cc.location, %(point)s::geography,
                                        (SELECT metres FROM bound))) c
WHERE c.active_orders < c.capacity
ORDER BY distance_m, c.id
LIMIT %(limit)s
"""  # noqa: S608 - only fixed fragments are interpolated


def courier_candidates(*, lat: float, lng: float, limit: int, radius_m: float) -> list[dict]:
    return fetch_dicts(
        COURIER_CANDIDATES_SQL,
        {
            "point": point_ewkt(lat=lat, lng=lng),
            "active": list(ACTIVE_DELIVERY_STATUSES),
            "fresh_since": fresh_since(),
            "radius": radius_m,
            "limit": limit,
        },
    )


TRACK_POINTS_MAX = 10_000
TRACK_DEFAULT_WINDOW = timedelta(hours=24)

# The geodesic length on the WGS84 spheroid (GeographicLib's geodesics, leg by leg) of the
# line that is the SQL expression `{line}` (a geometry of degrees). Measured as a geometry:
# made a geography first, a line with two consecutive points at antipodes (pole to pole,
# (0, 0) to (0, 180)), a path like any other, made PostGIS raise "Antipodal edge detected"
# once it had three points or more.
PATH_LENGTH_SQL = "ST_LengthSpheroid({line}, 'SPHEROID[\"WGS 84\",6378137,298.257223563]')"

# A courier's points in a window, in time order (ties in a fixed order, the same for the
# points and the line), with the length of the whole window's path (`PATH_LENGTH_SQL`, to
# the millimetre), rendered as the answer's JSON text; no row when there is no such
# courier (looked up in the same round trip).
#
# One pass over the window: the aggregates read the rows as the window function numbers
# them, already in its order (an Agg over a WindowAgg), so none sorts them again. Reading
# a materialized window three times, each aggregate sorting its input by `n` (the points'
# JSON text among them), cost a third of the statement on a day's track of 17,000 points.
COURIER_TRACK_JSON_SQL = f"""
SELECT '{{"points":['
    || COALESCE(string_agg({TRACK_POINT.json_sql(alias="w")}, ',')
                FILTER (WHERE w.n <= %(limit)s), '')
    || '],"distance_m":'
    || round(COALESCE({PATH_LENGTH_SQL.format(line="ST_MakeLine(w.location::geometry)")}, 0)
             ::numeric, 3)::text
    || ',"truncated":'
    || CASE WHEN count(*) > %(limit)s THEN 'true' ELSE 'false' END
    || '}}'
FROM (
    SELECT recorded_at, location, heading, speed_mps, accuracy_m,
           row_number() OVER ordered AS n
    FROM delivery_courierping
    WHERE courier_id = %(courier)s AND recorded_at >= %(since)s AND recorded_at <= %(until)s
    WINDOW ordered AS (ORDER BY recorded_at, ST_X(location::geometry), ST_Y(location::geometry))
    -- The order the aggregates take their input in, written out as PostgreSQL documents
    -- it (a sorted subquery); the window's own sort already gives it, so no sort is added.
    ORDER BY recorded_at, ST_X(location::geometry), ST_Y(location::geometry)
) w
HAVING EXISTS (SELECT FROM delivery_courier WHERE id = %(courier)s)
"""  # noqa: S608 - only a declared shape and a fixed fragment are interpolated


def courier_track_json(*, courier_id: int, since, until) -> bytes | None:
    """The track's answer as JSON text (UTF-8): the first `TRACK_POINTS_MAX` points of the
    window, the window's path length, and whether it held more; None when there is no
    courier `courier_id`."""
    return fetch_utf8(
        COURIER_TRACK_JSON_SQL,
        {"courier": courier_id, "since": since, "until": until, "limit": TRACK_POINTS_MAX},
    )


# The geodesic distance of each pair `(%(from)s[i], %(to)s[i])`, 1-based positions in the
# points (`%(from_lng)s`, `%(from_lat)s`) and (`%(to_lng)s`, `%(to_lat)s`) (degrees), in
# metres, in the pairs' order: PostGIS geography on the WGS84 spheroid, as ST_Distance
# between stored points (the coordinates go as float8 both ways, so the points are the
# stored ones to the bit).
GEODESIC_PAIRS_SQL = """
WITH a AS MATERIALIZED (
    SELECT n, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography AS g
    FROM unnest(%(from_lng)s::float8[], %(from_lat)s::float8[]) WITH ORDINALITY AS t(lng, lat, n)
), b AS MATERIALIZED (
    SELECT n, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography AS g
    FROM unnest(%(to_lng)s::float8[], %(to_lat)s::float8[]) WITH ORDINALITY AS t(lng, lat, n)
)
SELECT ST_Distance(a.g, b.g)
FROM unnest(%(from)s::int[], %(to)s::int[]) WITH ORDINALITY AS p(i, j, n)
JOIN a ON a.n = p.i JOIN b ON b.n = p.j
ORDER BY p.n
"""


def _array_text(values: Sequence) -> str:
    # One text parameter: the client-side binding quotes a list element by element, which
    # cost ~80 µs per thousand numbers. repr writes floats to the bit.
    return "{" + ",".join(map(repr, values)) + "}"


def geodesic_pairs(
    *,
    points_from: Sequence[tuple[float, float]],
    points_to: Sequence[tuple[float, float]],
    pairs: Sequence[tuple[int, int]],
) -> list[float]:
    """The geodesic distance in metres of each pair `(i, j)` of `pairs`, from
    `points_from[i]` to `points_to[j]` (longitude, latitude), in order."""
    rows = fetch_all(
        GEODESIC_PAIRS_SQL,
        {
            "from_lng": _array_text([lng for lng, _ in points_from]),
            "from_lat": _array_text([lat for _, lat in points_from]),
            "to_lng": _array_text([lng for lng, _ in points_to]),
            "to_lat": _array_text([lat for _, lat in points_to]),
            "from": _array_text([i + 1 for i, _ in pairs]),
            "to": _array_text([j + 1 for _, j in pairs]),
        },
    )
    return [distance for (distance,) in rows]


def couriers_on_map(*, merchant_id: int | None = None) -> list[dict]:
    """The answers of the couriers with a known point: every one, or, for `merchant_id`,
    those of its orders whose owner may see where their courier is (ready or on its way:
    `COURIER_VISIBLE_WHILE`), as its owner sees a courier (`TRACKED_COURIER`);
    `courier_move_shown` for one courier."""
    couriers = courier_list().filter(location__isnull=False)
    if merchant_id is None:
        return courier_answers(_answer_rows(couriers))
    carrying = Order.objects.filter(
        merchant_id=merchant_id, status__in=COURIER_VISIBLE_WHILE["owner"]
    ).values("courier_id")
    answers = courier_answers(_answer_rows(couriers.filter(pk__in=carrying)))
    return [TRACKED_COURIER.pick(answer) for answer in answers]


def owners_seeing(*, merchant_ids: Iterable[int], statuses: Iterable[str]) -> tuple[int, ...]:
    """The merchants, of a courier's active orders (`merchant_ids`, in `statuses`), whose
    owners may see where it is."""
    shown = COURIER_VISIBLE_WHILE["owner"]
    return tuple(
        sorted({m for m, status in zip(merchant_ids, statuses, strict=True) if status in shown})
    )


def courier_move_shown(
    *, merchant_id: int | None, carrying_for: Iterable[int], courier: bytes
) -> bytes | None:
    """A courier's answer (JSON text, as operators see it) as `couriers_on_map(merchant_id=
    merchant_id)` shows it, given the merchants of its orders whose owners may see it
    (`carrying_for`, `owners_seeing`); None where it shows no such courier. For the
    couriers' stream, which learns them from the ping and reads no table."""
    if merchant_id is None:
        return courier
    if merchant_id not in carrying_for:
        return None
    return json.dumps(TRACKED_COURIER.pick(json.loads(courier)), separators=(",", ":")).encode()
