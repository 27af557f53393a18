import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import DateTimeField, OuterRef, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.api.pagination import CountedPage, count_sql
from geomarket.api.permissions import can_manage_merchant
from geomarket.db.replicas import replica_reads
from geomarket.errors import Forbidden
from geomarket.kept_plans import Computed, KeptPlan
from geomarket.shapes import GEOJSON_POINT, json_array_sql
from geomarket.sql import (
    CompiledQuery,
    PreparedStatement,
    fetch_all,
    fetch_dicts,
    fetch_value,
    point_ewkt,
)
from merchants.models import LONGEST_SLOT, Merchant
from merchants.shapes import (
    DELIVERING_EXTRA,
    MERCHANT_HOURS,
    MERCHANT_OUTPUT,
    OPENING_INTERVAL,
    SLOT,
    location_json_sql,
)

# A merchant's preparation time in seconds, as its answer shows it (`prep_time_s`) and as
# ETAs count it: the median it learned from its orders (`learned_prep_time_s`, kept by
# beat: `merchants.services.merchant_prep_times_learn`) while it has one, else the default
# `ETA_PREPARATION_SECONDS`. In SQL over the merchant `{m}`, the default written in as
# `{default}` (SQL giving an integer); tests hold the two renderings equal.
PREP_TIME_SQL = "COALESCE({m}.learned_prep_time_s, {default})"


def prep_time_s(*, learned: int | None) -> int:
    return settings.ETA_PREPARATION_SECONDS if learned is None else learned


# Opening hours (migration 0009) in a merchant's answer: the first period the merchant
# `{m}` is open in from the instant `{now}` to 14 days on, from which `open_state` tells
# whether it is open then and when it next opens. A row `kept`: `b`, the bounds of its
# periods within those days, `[start, end, start, end, ...]` (migration 0014), computed
# once for the merchant (`OFFSET 0` keeps the planner from copying the call into each use
# of `b`); and `known_until`, how far on `b` holds every bound: the kept span's end when
# `merchants_open_bounds` answers from the kept bounds (which reach past the 14 days), else
# the 14 days' end.
_OPEN_BOUNDS_SQL = """SELECT merchants_open_bounds(
        {m}.open_bounds, {m}.open_periods_span, {m}.id, {m}.timezone,
        {now}, {now} + interval '14 days') AS b,
    CASE WHEN {m}.open_periods_span @> tstzrange({now}, {now} + interval '14 days')
         THEN upper({m}.open_periods_span) ELSE {now} + interval '14 days' END AS known_until
    OFFSET 0"""


def _open_period_sql(*, now: str) -> dict[str, str]:
    """The SQL of the first period's bounds, `open_from` and `open_until` (both NULL when
    there is none), read from `kept.b` (`_OPEN_BOUNDS_SQL`) at `now`. The number of bounds
    up to `now` (`width_bucket`, a binary search) is odd while the merchant is open; the
    period is clipped to the 14 days, as a multirange intersection would clip it.

    With them `opening_seen_at`, for a merchant closed through the 14 days (no period):
    when its next opening comes within the 14 days, which then shows it as its
    `next_opening_at`. That opening is the next bound, or lies past `kept.known_until`."""
    until = f"({now} + interval '14 days')"
    k = f"width_bucket({now}, kept.b)"
    opening = f"kept.b[{k} + 1]"
    return {
        "open_from": f"""CASE WHEN mod({k}, 2) = 1 THEN {now}
            WHEN {opening} < {until} THEN {opening} END""",
        "open_until": f"""CASE WHEN mod({k}, 2) = 1 THEN least({opening}, {until})
            WHEN {opening} < {until} THEN least(kept.b[{k} + 2], {until}) END""",
        "opening_seen_at": f"""CASE
            WHEN mod({k}, 2) = 0 AND NOT COALESCE({opening} < {until}, false)
            THEN COALESCE({opening}, kept.known_until) - interval '14 days' END""",
    }


@dataclass(frozen=True)
class OpenState:
    open_now: bool
    # None while open, or when it does not open within 14 days.
    next_opening_at: datetime | None


def open_state(*, open_from: datetime | None, now: datetime) -> OpenState:
    """What the first open period (`_open_period_sql`), read at `now`, says of the
    merchant: its start, None when there is no period. (When it next changes, for the
    answers kept until then, is `_OPEN_STATE_SQL`'s `changes_at`.)"""
    if open_from is None:
        return OpenState(False, None)
    if open_from <= now:
        return OpenState(True, None)
    return OpenState(False, open_from)


def row_open_state(row: dict) -> OpenState:
    """`open_state` of a merchant row read with `_MERCHANT_COLUMNS`."""
    return open_state(open_from=row["open_from"], now=row["shown_at"])


def open_instant(*, open_now: bool = False, open_at: datetime | None = None) -> datetime | None:
    """The instant a geo query keeps merchants open at (`NearPointSerializer`'s filter),
    or None for no filter."""
    return timezone.now() if open_now else open_at


def _as_shown(merchants: QuerySet[Merchant]) -> QuerySet[Merchant]:
    """The merchants with what their answer shows beyond their columns:
    - their sorted category ids (`category_id_list`) from an array subquery: prefetched
      as categories, Django builds a queryset and a model per merchant and per category,
      most of a page's CPU, to answer with the ids alone;
    - the start of their first open period from now (`open_from`, read at `shown_at`),
      all `open_state` needs."""
    links = Merchant.categories.through.objects.filter(merchant_id=OuterRef("pk"))
    ids = ArraySubquery(links.order_by("productcategory_id").values("productcategory_id"))
    now = timezone.now()
    kept = _OPEN_BOUNDS_SQL.format(m=Merchant._meta.db_table, now="%s::timestamptz")
    bound = _open_period_sql(now="%s::timestamptz")["open_from"]
    sql = f"(SELECT {bound} FROM ({kept}) kept)"  # noqa: S608
    open_from = RawSQL(  # noqa: S611 - fixed fragments and the table name only
        sql, [now] * sql.count("%s"), output_field=DateTimeField()
    )
    return merchants.annotate(
        category_id_list=ids, open_from=open_from, shown_at=Value(now, DateTimeField())
    )


def _listed(*, category: int | str | None = None, q: str | None = None) -> QuerySet[Merchant]:
    """The merchants the public list shows for the filters."""
    merchants = Merchant.objects.filter(is_active=True)
    if category is not None:
        # By id (an int) or slug (a str), as `CategoryRefField` reads it.
        lookup = "categories__id" if isinstance(category, int) else "categories__slug"
        merchants = merchants.filter(**{lookup: category})
    if q:
        merchants = merchants.filter(name__icontains=q)
    return merchants


# Values no call passes, in the filters' places of the list's compiled statements: a
# category's id or slug, and the name's pattern as `icontains` makes it.
_CATEGORY_STAND_IN = {int: -918_273_645, str: "merchant-list-category-stand-in"}
_NAME_STAND_IN = "merchant-list-name-stand-in"


# The number of merchants the list shows unfiltered, kept by triggers on their table
# (`merchants.listed_count`, migration 0023): counting the bench city's 19,395 active
# merchants on each request was 2.5 ms of the list's 3.2.
LISTED_COUNT_TABLE = "merchants_listed_count"


def listed_ids_sql() -> str:
    """The statement of the ids of the merchants the list shows unfiltered (`_listed`):
    what the kept count counts."""
    listed = _listed().values("pk")
    sql = CompiledQuery(listed, slots={}).named_sql()
    # The count's trigger runs this over a statement's merchant rows alone: a rule that
    # also read another table would miss that table's writes and the count would drift.
    read = {join.table_name for join in listed.query.alias_map.values()}
    if read != {Merchant._meta.db_table}:
        raise ImproperlyConfigured(
            f"the kept merchant count needs a list rule over merchants alone, not {sorted(read)}"
        )
    return sql


def _merchant_list_text(*, category_type: type | None, by_name: bool) -> str:
    """The list's statement for the filters given: one row of the count of the merchants
    matching and the page's JSON text (`MERCHANT_OUTPUT`s, `_merchant_answers_sql`). The
    filters are the ORM's (`_listed`), compiled once (`CompiledQuery`): building and
    compiling the list's queryset cost more than running it. Unfiltered, the count is
    the kept one."""
    slots = {}
    if category_type is not None:
        slots["category"] = _CATEGORY_STAND_IN[category_type]
    if by_name:
        slots["name"] = f"%{_NAME_STAND_IN}%"
    matching = _listed(category=slots.get("category"), q=_NAME_STAND_IN if by_name else None)
    if slots:
        counted = count_sql(CompiledQuery(matching.values("pk"), slots=slots).named_sql())
    else:
        counted = f"SELECT merchants FROM {LISTED_COUNT_TABLE}"  # noqa: S608 - a fixed name
    ordered = CompiledQuery(matching.order_by("name", "id").values("pk"), slots=slots).named_sql()
    page = json_array_sql(
        MERCHANT_OUTPUT,
        _merchant_answers_sql(
            f"""({ordered} LIMIT %(limit)s OFFSET %(offset)s) page
            JOIN merchants_merchant m ON m.id = page.pk"""
        ),
        order_by=("name", "id"),
    )
    return f"SELECT ({counted}) AS count, ({page}) AS body"


@functools.cache
def _merchant_list_sql(*, category_type: type | None, by_name: bool) -> PreparedStatement:
    """The list's statement (`_merchant_list_text`) for the filters given. Filtered, it is
    prepared (PostgreSQL took 1.3 ms to plan it on the bench city), not kept: a plan made
    without the page's LIMIT reckons on a tenth of the merchants, for which sorting them
    all may look cheaper than walking the name index. Unfiltered, it is the kept plan
    `MERCHANT_LIST_PLAN`, whose joins are held to index probes."""
    if category_type is None and not by_name:
        return _prepared_call(MERCHANT_LIST_PLAN)
    return PreparedStatement(_merchant_list_text(category_type=category_type, by_name=by_name))


@replica_reads
def merchant_list_page(
    *, offset: int, limit: int, category: int | str | None = None, q: str | None = None
) -> CountedPage:
    """The JSON text of rows `offset` to `offset + limit` of the active merchants by name
    (`MERCHANT_OUTPUT`s), only those of the `category` (an id or a slug) and with `q` in
    their name when given, as the page's one row, and their count."""
    page = _merchant_list_sql(
        category_type=None if category is None else type(category), by_name=bool(q)
    )
    params = {
        "category": category,
        # As `icontains` matches: `q` anywhere, its own % and _ taken as they are.
        "name": f"%{connection.ops.prep_for_like_query(q)}%" if q else None,
        **_answer_params(),
        "offset": offset,
        "limit": limit,
    }
    ((count, results),) = page.fetch_all(params)
    return CountedPage(rows=[results], count=count)


# What a merchant's public sub-resources (hours, closures, slots, zones) need of it:
# whether the caller may see it, and its time zone. One index probe: no address, category
# ids or open period, which building and compiling `_as_shown` alone costs milliseconds.
_MERCHANT_SEEN = PreparedStatement(
    "SELECT is_active, timezone FROM merchants_merchant WHERE id = %s"
)


@dataclass(frozen=True)
class MerchantRef:
    """A merchant as its sub-resources' selectors read it: its id and time zone."""

    pk: int
    timezone: str


def merchant_ref(*, user, merchant_id: int) -> MerchantRef | None:
    """`merchant_visible`'s decision, reading only what the merchant's sub-resources need."""
    found = _MERCHANT_SEEN.fetch_all([merchant_id])
    if not found or not _seen_by(user, merchant_id=merchant_id, active=found[0][0]):
        return None
    return MerchantRef(merchant_id, found[0][1])


def merchant_visible(*, user, merchant_id: int) -> Merchant | None:
    """Active merchants are public; an inactive one is seen by its owner and operators."""
    merchant = _as_shown(Merchant.objects.select_related("address")).filter(pk=merchant_id).first()
    if merchant is None or not _seen_by(user, merchant_id=merchant.pk, active=merchant.is_active):
        return None
    return merchant


def _seen_by(user, *, merchant_id: int, active: bool) -> bool:
    return active or is_operator(user) or user_merchant_id(user) == merchant_id


def _may_manage(user, merchant_id: int) -> None:
    if not can_manage_merchant(user, merchant_id):
        raise Forbidden("Only the merchant's owner or an operator may do this.")


def merchant_managed(*, user, merchant_id: int) -> Merchant:
    """The merchant, if `user` may manage it: 404 when unseen, 403 when only readable."""
    merchant = merchant_visible(user=user, merchant_id=merchant_id)
    if merchant is None:
        raise Merchant.DoesNotExist
    _may_manage(user, merchant.pk)
    return merchant


def merchant_managed_id(*, user, merchant_id: int) -> int:
    """`merchant_managed`'s decision, from `merchant_ref`'s narrow read: for the owner's
    lists (stock, orders, zones), which need its id and not a merchant with its address,
    location and categories."""
    if merchant_ref(user=user, merchant_id=merchant_id) is None:
        raise Merchant.DoesNotExist
    _may_manage(user, merchant_id)
    return merchant_id


def _seen_page_statement(*, count_sql: str, page_sql: str, order: str) -> PreparedStatement:
    """A page of a merchant's rows (`page_sql`, in the order of its columns `order`, over
    `%(merchant_id)s`), read with their count (`count_sql`) beside the merchant's row,
    which the caller is judged on (`merchant_active`): one round trip where reading the
    merchant first took two. A page holding no row is one row of NULL columns, with the
    count: a page past the end needs no statement of its own either."""
    return PreparedStatement(f"""
SELECT m.is_active AS merchant_active, ({count_sql}) AS matched_count, page.*
FROM merchants_merchant m
LEFT JOIN LATERAL ({page_sql} LIMIT %(limit)s OFFSET %(offset)s) page ON true
WHERE m.id = %(merchant_id)s
ORDER BY {", ".join(f"page.{column}" for column in order.split(", "))}
""")  # noqa: S608 - fixed fragments only


def _seen_page(
    statement: PreparedStatement, *, user, merchant_id: int, **params
) -> CountedPage | None:
    """The page `statement` (`_seen_page_statement`) reads, as dicts, and the count; None
    when the merchant is unknown or `user` may not see it (`merchant_visible`)."""
    rows = statement.fetch_dicts({"merchant_id": merchant_id, **params})
    if not rows or not _seen_by(user, merchant_id=merchant_id, active=rows[0]["merchant_active"]):
        return None
    page = [row for row in rows if row["id"] is not None]
    return CountedPage(rows=page, count=rows[0]["matched_count"])


# A merchant's zones by id, only its active ones unless `%(include_inactive)s`; the area
# as EWKB, read into a geometry as the ORM reads it (`zone_area`).
_ZONES_WHERE = """FROM merchants_deliveryzone
    WHERE merchant_id = %(merchant_id)s AND (is_active OR %(include_inactive)s)"""
_ZONES_COUNT_SQL = f"SELECT count(*) {_ZONES_WHERE}"
_ZONE_COLUMNS = "id, merchant_id, name, area, delivery_fee, min_order_amount, is_active"
_ZONES_PAGE = _seen_page_statement(
    count_sql=_ZONES_COUNT_SQL,
    page_sql=f"SELECT {_ZONE_COLUMNS} {_ZONES_WHERE} ORDER BY id",
    order="id",
)


def delivery_zone_page(
    *, user, merchant_id: int, include_inactive: bool, offset: int, limit: int
) -> CountedPage | None:
    """Rows `offset` to `offset + limit` of the merchant's zones (`_ZONE_COLUMNS`) by id,
    and their count; None when the merchant is unknown or `user` may not see it
    (`merchant_visible`)."""
    return _seen_page(
        _ZONES_PAGE,
        user=user,
        merchant_id=merchant_id,
        include_inactive=include_inactive,
        offset=offset,
        limit=limit,
    )


_ZONE_SQL = f"""
SELECT {_ZONE_COLUMNS} FROM merchants_deliveryzone
WHERE id = %(zone_id)s AND merchant_id = %(merchant_id)s
"""  # noqa: S608 - fixed fragments only


def delivery_zone_row(*, merchant_id: int, zone_id: int) -> dict | None:
    """The merchant's zone `zone_id` (`_ZONE_COLUMNS`), active or not."""
    found = fetch_dicts(_ZONE_SQL, {"merchant_id": merchant_id, "zone_id": zone_id})
    return found[0] if found else None


# The geo reads below are the hottest queries of the customer apps. They are written in
# SQL because they need LATERAL joins, and return plain dicts. Each one walks the GiST
# index in `<->` order (sphere distance) inside the exact `ST_DWithin`/`ST_Covers`
# filter, keeps only the rows it returns, and computes the exact spheroid
# `ST_Distance` for those rows alone, which also gives their final order.

_OPEN_PERIOD = _open_period_sql(now="%(now)s::timestamptz")
# A merchant's answer (`merchant_output`), from the merchant `m` and `_MERCHANT_JOINS`.
# PostgreSQL renders it (`MERCHANT_OUTPUT`) from these and `_MERCHANT_OUTPUT_COLUMNS`.
_MERCHANT_SHOWN_COLUMNS = f"""
    m.id, m.owner_id, m.name, m.description, m.phone, m.is_active, m.created_at,
    m.require_handover_code, m.learned_prep_time_s,
    ST_X(m.location::geometry) AS lng, ST_Y(m.location::geometry) AS lat,
    a.line1, a.line2, a.city, a.postal_code, a.country,
    ARRAY(SELECT mc.productcategory_id FROM merchants_merchant_categories mc
          WHERE mc.merchant_id = m.id ORDER BY 1) AS category_ids,
    m.timezone, {_OPEN_PERIOD["open_from"]} AS open_from,
    {_OPEN_PERIOD["open_until"]} AS open_until,
    {_OPEN_PERIOD["opening_seen_at"]} AS opening_seen_at, %(now)s::timestamptz AS shown_at
"""  # noqa: S608 - fixed fragments only
# The rest of what `MERCHANT_OUTPUT` reads of the merchant `m`.
_MERCHANT_OUTPUT_COLUMNS = f"""
    {location_json_sql("m.location", GEOJSON_POINT)} AS location_json,
    {PREP_TIME_SQL.format(m="m", default="%(prep_time_default_s)s")} AS prep_time_s"""
# The same and its distance to `%(point)s`, for the geo reads (`merchant_row`).
_MERCHANT_COLUMNS = f"""{_MERCHANT_SHOWN_COLUMNS},
    ST_Distance(m.location, %(point)s::geography) AS distance_m
"""

# What `_MERCHANT_SHOWN_COLUMNS` reads besides the merchant `m`, joined after it. The open
# period's bounds are two timestamps, not a range: psycopg parses a range in Python, about
# 19 us a row, 2 ms of an answer of 100.
_MERCHANT_JOINS = f"""
JOIN merchants_address a ON a.id = m.address_id
CROSS JOIN LATERAL ({_OPEN_BOUNDS_SQL.format(m="m", now="%(now)s::timestamptz")}) kept
"""

# Whether the merchant `{m}` (a merchants_merchant row) is open at `{at}`:
# `merchants_open_at`, from the periods kept on the row while they span the instant.
OPEN_AT_SQL = (
    "merchants_open_at_kept({m}.open_periods, {m}.open_periods_span, {m}.id, {m}.timezone, {at})"
)


# The key of the grid cell holding `%(point)s` (EWKT), as `DeliveryZoneCell.cell` keys
# cells (migration 0020).
POINT_CELL_SQL = "merchants_zone_cell(%(point)s::geometry)"


# Whether the zone of a row `c` of `DeliveryZoneCell` holding `%(point)s` covers it, as
# `ST_Covers` on the zone's geography says (a point on the boundary counts): every point
# of a covered cell is; a point in the cell's core is; one outside its hull is not; the
# zone's own `ST_Covers` decides the rest, a point within centimetres of its boundary.
# `area` is the SQL of the zone's area, read only then.
def _cell_covers(area: str) -> str:
    return f"""(c.covered OR _ST_Intersects(c.core, %(point)s::geometry)
              OR ((c.hull IS NULL OR _ST_Intersects(c.hull, %(point)s::geometry))
                  AND ST_Covers({area}, %(point)s::geography)))"""


# True when the zone `z` (of merchants_deliveryzone) covers `%(point)s`: one row lookup
# in its own rows, its cell's or, for a zone tested everywhere, the one covering all.
_ZONE_COVERS = f"""EXISTS (
                SELECT 1 FROM merchants_deliveryzonecell c
                WHERE c.zone_id = z.id
                  AND c.cell IN (int4range({POINT_CELL_SQL}, {POINT_CELL_SQL}, '[]'),
                                 int4range(NULL, NULL))
                  AND {_cell_covers("z.area")}
              )"""  # noqa: S608 - a fixed fragment only

# For another app's walk of merchants near a point (catalog's products/nearby): active
# merchants within `%(radius)s` metres of `%(point)s`, nearest first through the location
# index, with the columns `columns` (of merchants_merchant). `delivering` keeps those with
# an active zone covering the point (`ST_Covers`: a point on the boundary counts).
_DELIVERING_FILTER = f"""
        AND EXISTS (
            SELECT 1 FROM merchants_deliveryzone z
            WHERE z.merchant_id = mm.id AND z.is_active AND {_ZONE_COVERS}
        )"""  # noqa: S608 - a fixed fragment only


def merchants_walk_sql(*, columns: list[str], delivering: bool, open_at: bool = False) -> str:
    """`open_at`: keep the merchants open at `%(open_at)s`, tested as the walk reaches
    them, so the walk goes on past closed ones."""
    selected = ", ".join(f"mm.{column}" for column in columns)
    opened = "AND " + OPEN_AT_SQL.format(m="mm", at="%(open_at)s") if open_at else ""
    return f"""
        SELECT {selected} FROM merchants_merchant mm
        WHERE mm.is_active AND ST_DWithin(mm.location, %(point)s::geography, %(radius)s)
        {_DELIVERING_FILTER if delivering else ""} {opened}
        ORDER BY mm.location <-> %(point)s::geography"""  # noqa: S608 - column names only


# merchants/nearby: the nearest `%(limit)s` merchants on the spheroid, ordered by the
# distance as the answer shows it (to the centimetre), ties by id. The index walks in
# `<->` order, the sphere's: a merchant it did not reach may be nearer on the spheroid than
# the farthest of its first `limit` (at 52.52 N, 1,000.77 m north after 1,002.71 m east),
# or as near with a lower id. So that farthest distance bounds the answer, and the
# merchants within it (the same walk, a range of the same index) are all ranked.
@functools.cache
def merchants_nearby_sql(*, open_at: bool) -> str:
    walk = merchants_walk_sql(columns=["id", "location"], delivering=False, open_at=open_at)
    return f"""
WITH walked AS MATERIALIZED (
    SELECT w.id, ST_Distance(w.location, %(point)s::geography) AS metres
    FROM ({walk}
        LIMIT %(limit)s
    ) w
), reach AS (
    SELECT count(*) >= %(limit)s AS filled, max(metres) + 0.01 AS metres FROM walked
)
SELECT {_MERCHANT_COLUMNS}
FROM (
    SELECT id FROM walked
    UNION
    SELECT w.id FROM ({walk}) w
    WHERE (SELECT filled FROM reach)
      AND ST_DWithin(w.location, %(point)s::geography, (SELECT metres FROM reach))
) nearest
JOIN merchants_merchant m ON m.id = nearest.id {_MERCHANT_JOINS}
ORDER BY round(ST_Distance(m.location, %(point)s::geography)::numeric, 2), m.id
LIMIT %(limit)s
"""  # noqa: S608 - only fixed column lists are interpolated


# Active merchants' zone cells covering `%(point)s`, nearest merchant first, each with
# `nth`, its merchant's rank in that order (merchants as far as each other share one).
# The walk is one GiST index (migration 0020): kept to the rows of the point's cell and
# ordered by the merchants' points on the unit sphere in 3D, whose chord distance orders
# them as the sphere distance `<->` does (migration 0006). Most rows cover their whole
# cell; the others are tested as `_cell_covers` says. The outer `nth <= limit` stops the
# walk after `limit` merchants (a run condition).
_CELL_ZONE_AREA = "(SELECT z.area FROM merchants_deliveryzone z WHERE z.id = c.zone_id)"
# The hours filter on a row `c` when `%(open_at)s` is given, through its merchant's row:
# the cells do not carry hours. A scalar subquery, not EXISTS: the planner, counting
# every row of the point's cell where the walk stops after a few hundred, would test an
# EXISTS against every merchant's hours at once (a hashed subplan), tens of milliseconds.
_CELL_MERCHANT_OPEN = f"""AND (%(open_at)s IS NULL OR (
                SELECT {OPEN_AT_SQL.format(m="mo", at="%(open_at)s")}
                FROM merchants_merchant mo WHERE mo.id = c.merchant_id
            ))"""  # noqa: S608 - a fixed fragment only

_NEAREST_COVERING_CELLS_SQL = f"""
        SELECT walk.*, dense_rank() OVER (ORDER BY walk.chord) AS nth
        FROM (
            SELECT c.merchant_id, c.zone_id, c.delivery_fee, c.min_order_amount,
                   c.merchant_location,
                   c.merchant_unit <<->> merchants_unit_vector(%(point)s::geography) AS chord
            FROM merchants_deliveryzonecell c
            WHERE c.merchant_is_active AND c.cell @> {POINT_CELL_SQL}
              AND {_cell_covers(_CELL_ZONE_AREA)} {_CELL_MERCHANT_OPEN}
            ORDER BY c.merchant_unit <<->> merchants_unit_vector(%(point)s::geography)
        ) walk"""  # noqa: S608 - a fixed fragment only

# The nearest `limit` merchants' covering zone cells, the cheapest zone of each; the
# ranking reads no merchant row (the cells carry location and active flag). Only the
# merchants answered are read, each a row lookup: what the answer shows of it alone is
# rendered in its row (`shown_json`, `merchants.delivering_sql`), with the open period's bounds.
_DELIVERING_TO_ROWS_SQL = f"""
SELECT m.id, m.shown_json, m.require_handover_code,
       {PREP_TIME_SQL.format(m="m", default="%(prep_time_default_s)s")} AS prep_time_s,
       ST_Distance(m.location, %(point)s::geography) AS distance_m,
       nearest.zone_id, nearest.delivery_fee, nearest.min_order_amount,
       {_OPEN_PERIOD["open_from"]} AS open_from, {_OPEN_PERIOD["open_until"]} AS open_until,
       {_OPEN_PERIOD["opening_seen_at"]} AS opening_seen_at, %(now)s::timestamptz AS shown_at
FROM (
    SELECT cheapest.*, cheapest.merchant_location <-> %(point)s::geography AS sphere_m
    FROM (
        SELECT DISTINCT ON (p.merchant_id) p.*
        FROM ({_NEAREST_COVERING_CELLS_SQL}) p
        WHERE p.nth <= %(limit)s
        ORDER BY p.merchant_id, p.delivery_fee, p.zone_id
    ) cheapest
    ORDER BY sphere_m, cheapest.merchant_id
    LIMIT %(limit)s
) nearest
JOIN merchants_merchant m ON m.id = nearest.merchant_id
CROSS JOIN LATERAL ({_OPEN_BOUNDS_SQL.format(m="m", now="%(now)s::timestamptz")}) kept
"""  # noqa: S608 - only fixed fragments are interpolated


# `open_state` in SQL, beside the rows `{rows}` read with their open period's bounds
# (`open_from`, `open_until`, `opening_seen_at`, at `shown_at`): its `open_now`,
# `next_opening_at` and `changes_at`, the first instant either of those changes with no
# write: a merchant closed through the 14 days changes when its next opening comes within
# them. `OFFSET 0` keeps each subquery's
# columns computed once: pulled up, the open period's expressions are copied into every
# use, the rendering's too (a third of the statement's time).
_OPEN_STATE_SQL = """
SELECT rows.*, COALESCE(rows.open_from <= rows.shown_at, false) AS open_now,
       CASE WHEN rows.open_from > rows.shown_at THEN rows.open_from END AS next_opening_at,
       CASE WHEN rows.open_from <= rows.shown_at THEN rows.open_until
            ELSE COALESCE(rows.open_from, rows.opening_seen_at) END AS changes_at
FROM ({rows} OFFSET 0) rows OFFSET 0"""

# One result (`MERCHANT_DELIVERING`) of a row `r`: its stored opening, then the fields
# rendered for this answer, which close it.
_DELIVERING_RESULT_SQL = (
    f"r.shown_json || {DELIVERING_EXTRA.json_sql(alias='r', placeholder='%s', opening=',')}"
)

# Delivering-to's answer, rendered by PostgreSQL (`MERCHANT_DELIVERING`): its JSON text,
# nearest first by the exact distance (the walk's `<->` is the sphere's), and when the
# first of its merchants' open states changes (`OpenState.changes_at`). The body of the
# function `merchants_delivering_to` (`merchants.delivering_sql`), which puts its own
# parameters in the places of `point` (EWKT), `limit`, `now`, `open_at` (NULL: no
# filter) and `prep_time_default_s`, spelled as psycopg's here, as the fragments shared
# with other statements spell them; never sent as it is.
DELIVERING_TO_ANSWER_SQL = f"""
SELECT '{{"results":[' || COALESCE(string_agg({_DELIVERING_RESULT_SQL}, ','
                                              ORDER BY r.distance_m, r.id), '') || ']}}',
       extract(epoch FROM min(r.changes_at))::float8
FROM ({_OPEN_STATE_SQL.format(rows=_DELIVERING_TO_ROWS_SQL)}) r"""  # noqa: S608


# Delivering-to's statement as a function whose plan each session keeps: a generic one,
# the point being one typed parameter whose geometry, unit vector and cell are computed
# once; a statement of its own would cost its planning on every call unless prepared (a
# third of its time).
DELIVERING_TO_PLAN = KeptPlan(
    name="merchants_delivering_to",
    statement=DELIVERING_TO_ANSWER_SQL,
    types={
        "point": "geography",
        "limit": "integer",
        "now": "timestamptz",
        "open_at": "timestamptz",
        "prep_time_default_s": "integer",
    },
    returns=(("body", "text"), ("changes_at", "float8")),
    computed=(
        Computed("%(point)s::geometry", "q_geometry", "geometry"),
        Computed("merchants_unit_vector(%(point)s::geography)", "q_unit", "geometry"),
        Computed(POINT_CELL_SQL, "q_cell", "integer"),
        # In a generic plan the sum would be computed again for each merchant, several
        # times (adding days reads the session's time zone).
        Computed("%(now)s::timestamptz + interval '14 days'", "q_horizon", "timestamptz"),
    ),
    # The planner counts every row of the point's cell, where the walk stops after a few
    # hundred: above jit_above_cost, compiling would cost a hundred times the run.
    settings={"jit": "off"},
)


def _geo_params(*, lat: float, lng: float, open_at: datetime | None, **params) -> dict:
    return {
        "point": point_ewkt(lat=lat, lng=lng),
        "now": timezone.now(),
        "open_at": open_at,
        **params,
    }


@replica_reads
def merchants_nearby(
    *, lat: float, lng: float, radius_m: float, limit: int, open_at: datetime | None = None
) -> list[dict]:
    """Active merchants within `radius_m` metres, nearest first; only those open at
    `open_at` when given."""
    return fetch_dicts(
        *merchants_nearby_statement(lat=lat, lng=lng, radius=radius_m, limit=limit, open_at=open_at)
    )


@replica_reads
def merchants_delivering_to(
    *, lat: float, lng: float, limit: int, open_at: datetime | None = None
) -> tuple[bytes, float | None]:
    """The answer's body: active merchants with an active zone covering the point, each
    with its cheapest covering zone; only those open at `open_at` when given. `ST_Covers`
    counts a point on a zone's boundary as covered. With it, the first instant (Unix time)
    a merchant's open state in it changes, None when none does within 14 days."""
    ((body, changes_at),) = fetch_all(
        *merchants_delivering_to_statement(lat=lat, lng=lng, limit=limit, open_at=open_at)
    )
    return body.encode(), changes_at


# Fragments of other apps' statements. Merchants owns these tables, so the SQL naming
# them lives here; an app joining them into a hot statement composes these, keeping its
# one round trip, instead of spelling the tables itself.

# Merchants' ids, locations and whether they are active, as a table to join:
# `JOIN ({MERCHANT_LOCATIONS_SQL}) m ON m.id = ...`. PostgreSQL pulls the subquery up,
# so the join plans as one on the table itself.
MERCHANT_LOCATIONS_SQL = (
    "SELECT id, location, is_active, learned_prep_time_s FROM merchants_merchant"
)
# Addresses' points, joined the same way: `JOIN ({ADDRESS_LOCATIONS_SQL}) a ON a.id = ...`.
ADDRESS_LOCATIONS_SQL = "SELECT id, location FROM merchants_address"

# The active merchant `%(merchant_id)s` with its cheapest active zone covering `%(point)s`
# (EWKT): one row of `id, name, owner_id, zone_id, delivery_fee, min_order_amount`, the
# zone's columns NULL when no zone covers the point; no row for an unknown or inactive
# merchant.
MERCHANT_COVERING_ZONE_SQL = f"""
SELECT m.id, m.name, m.owner_id,
       zone.id AS zone_id, zone.delivery_fee, zone.min_order_amount
FROM merchants_merchant m
LEFT JOIN LATERAL (
    SELECT z.id, z.delivery_fee, z.min_order_amount
    FROM merchants_deliveryzone z
    WHERE z.merchant_id = m.id AND z.is_active AND {_ZONE_COVERS}
    ORDER BY z.delivery_fee, z.id
    LIMIT 1
) zone ON true
WHERE m.id = %(merchant_id)s AND m.is_active
"""  # noqa: S608 - a fixed fragment only

MERCHANTS_DISTANCE_SQL = f"""
SELECT m.id, ST_Y(m.location::geometry), ST_X(m.location::geometry),
       ST_Distance(m.location, %(destination)s::geography), m.learned_prep_time_s
FROM ({MERCHANT_LOCATIONS_SQL}) m
WHERE m.id = ANY(%(ids)s) AND (m.is_active OR NOT %(active_only)s)
"""  # noqa: S608 - only a fixed fragment is interpolated


def merchants_distance_to(
    *, merchant_ids: list[int], lat: float, lng: float, active_only: bool = True
) -> dict[int, tuple[float, float, float, int | None]]:
    """The active ones of `merchant_ids` (all of them unless `active_only`): their id to
    their `(lat, lng)`, their exact spheroid distance in metres to the point and their
    `learned_prep_time_s`."""
    rows = fetch_all(
        MERCHANTS_DISTANCE_SQL,
        {
            "destination": point_ewkt(lat=lat, lng=lng),
            "ids": merchant_ids,
            "active_only": active_only,
        },
    )
    return {row[0]: row[1:] for row in rows}


def delivery_zones_reach(
    *, first_merchant_id: int, last_merchant_id: int
) -> list[tuple[int, Decimal, Decimal, float, float]]:
    """The active zones of the active merchants with ids in the range, cheapest first per
    merchant: `merchant_id, delivery_fee, min_order_amount, inner, outer`.

    `inner` is the distance from the shop to the zone's edge, so every point nearer is
    inside; `outer` the distance to its farthest corner, so every point farther is
    outside. Both are geodesic, measured by PostGIS on the stored shapes.
    """
    return fetch_all(
        """
        SELECT z.merchant_id, z.delivery_fee, z.min_order_amount,
               ST_Distance(m.location, ST_Boundary(z.area::geometry)::geography),
               (SELECT max(ST_Distance(m.location, corner.geom::geography))
                FROM ST_DumpPoints(z.area::geometry) AS corner)
        FROM merchants_deliveryzone AS z
        JOIN merchants_merchant AS m ON m.id = z.merchant_id
        WHERE z.is_active AND m.is_active AND m.id BETWEEN %(first)s AND %(last)s
        ORDER BY z.merchant_id, z.delivery_fee, z.id
        """,
        {"first": first_merchant_id, "last": last_merchant_id},
    )


# The weekly intervals of the merchant whose id is the SQL `{merchant}`.
_WEEKLY_ROWS = """
SELECT weekday, opens, closes FROM merchants_openinginterval WHERE merchant_id = {merchant}"""
_WEEKLY_SQL = _WEEKLY_ROWS.format(merchant="%s") + " ORDER BY weekday, opens"


def merchant_hours(*, merchant: Merchant | MerchantRef) -> dict:
    """The merchant's zone and week: `weekly` holds `(weekday, opens, closes)` rows."""
    return {"timezone": merchant.timezone, "weekly": fetch_all(_WEEKLY_SQL, [merchant.pk])}


_CLOSURES_COUNT_SQL = "SELECT count(*) FROM merchants_closure WHERE merchant_id = %(merchant_id)s"
# `nth` orders the page's rows as their closures' periods, which are not read into Python
# (psycopg parses a range in Python).
_CLOSURES_PAGE = _seen_page_statement(
    count_sql=_CLOSURES_COUNT_SQL,
    page_sql="""SELECT id, lower(period) AS starts_at, upper(period) AS ends_at, reason,
        row_number() OVER (ORDER BY period, id) AS nth
    FROM merchants_closure WHERE merchant_id = %(merchant_id)s ORDER BY period, id""",
    order="nth",
)


def closure_page(*, user, merchant_id: int, offset: int, limit: int) -> CountedPage | None:
    """Rows `offset` to `offset + limit` of the merchant's closures in time order (`id,
    starts_at, ends_at, reason`), and their count; None when the merchant is unknown or
    `user` may not see it."""
    return _seen_page(
        _CLOSURES_PAGE, user=user, merchant_id=merchant_id, offset=offset, limit=limit
    )


# The merchant's plan beside its row, which the caller is judged on.
_SLOT_PLAN = PreparedStatement("""
SELECT m.is_active, p.slot_minutes, p.capacity, p.lead_minutes, p.horizon_days
FROM merchants_merchant m LEFT JOIN merchants_slotplan p ON p.merchant_id = m.id
WHERE m.id = %s
""")


def slot_plan(*, user, merchant_id: int) -> tuple | None:
    """The merchant's plan as `slot_minutes, capacity, lead_minutes, horizon_days`, all
    None when it has none; None when the merchant is unknown or `user` may not see it."""
    found = _SLOT_PLAN.fetch_all([merchant_id])
    if not found or not _seen_by(user, merchant_id=merchant_id, active=found[0][0]):
        return None
    return found[0][1:]


def merchant_open_at(*, merchant_id: int, at: datetime) -> bool:
    """Whether the merchant is open at the instant `at` (`merchants_open_at`)."""
    return fetch_value(
        "SELECT merchants_open_at(id, timezone, %(at)s) FROM merchants_merchant WHERE id = %(id)s",
        {"id": merchant_id, "at": at},
    )


def merchant_next_opening(*, merchant_id: int, at: datetime) -> datetime | None:
    """The next instant after `at` the merchant opens, within 14 days; None while open."""
    return fetch_value(
        "SELECT merchants_next_opening(id, timezone, %(at)s) FROM merchants_merchant"
        " WHERE id = %(id)s",
        {"id": merchant_id, "at": at},
    )


# --- a merchant's answers, rendered by PostgreSQL -----------------------------------------
# Each public read of a merchant is one statement answering whether the merchant is active
# and the answer's JSON text, which the view sends as it is: the caller is judged
# (`_seen_by`) on that row, and rendering the answer in Python cost more than reading it.
# Those reading one merchant are kept plans (`geomarket.kept_plans`): prepared, PostgreSQL
# still planned a merchant's detail on every call (0.9 ms, to run in 0.3), a custom plan
# looking cheaper than its generic one; a probe by key plans alike for every merchant.


def _merchant_answers_sql(merchants: str, where: str = "") -> str:
    """The rows `MERCHANT_OUTPUT` renders, of the merchants `m` that the FROM items
    `merchants` and `where` give, read at `%(now)s`."""
    rows = f"""SELECT {_MERCHANT_SHOWN_COLUMNS}, {_MERCHANT_OUTPUT_COLUMNS}
        FROM {merchants} {_MERCHANT_JOINS} {where}"""  # noqa: S608 - fixed fragments only
    return _OPEN_STATE_SQL.format(rows=rows)


# The parameters of `_merchant_answers_sql` and their values for an answer now.
_ANSWER_TYPES = {"now": "timestamptz", "prep_time_default_s": "integer"}


def _answer_params() -> dict:
    return {"now": timezone.now(), "prep_time_default_s": settings.ETA_PREPARATION_SECONDS}


_MERCHANT_ID = {"merchant_id": "bigint"}
_SEEN_ANSWER = (("is_active", "boolean"), ("body", "text"))


_CALLS: dict[str, PreparedStatement] = {}


def _prepared_call(plan: KeptPlan) -> PreparedStatement:
    """The call of a kept plan, prepared: the call costs no planning either, and its short
    text is one psycopg converts once (it parses a statement over 4 kB on every run)."""
    if plan.name not in _CALLS:
        _CALLS[plan.name] = PreparedStatement(plan.call())
    return _CALLS[plan.name]


MERCHANT_DETAIL_PLAN = KeptPlan(
    name="merchants_detail",
    statement=f"""SELECT r.is_active, {MERCHANT_OUTPUT.json_sql(alias="r")}
FROM ({_merchant_answers_sql("merchants_merchant m", "WHERE m.id = %(merchant_id)s")}) r""",  # noqa: S608
    types={**_MERCHANT_ID, **_ANSWER_TYPES},
    returns=_SEEN_ANSWER,
)

# The public list unfiltered, its plan kept. Made without the page's LIMIT, the plan
# reckoned on a tenth of the merchants and merged their page with every address (6 ms);
# held to nested loops, it probes each of the page's rows (0.7 ms).
MERCHANT_LIST_PLAN = KeptPlan(
    name="merchants_list",
    statement=_merchant_list_text(category_type=None, by_name=False),
    types={**_ANSWER_TYPES, "offset": "bigint", "limit": "integer"},
    returns=(("count", "bigint"), ("body", "text")),
    settings={"enable_hashjoin": "off", "enable_mergejoin": "off"},
)

_WEEKLY_JSON = json_array_sql(
    OPENING_INTERVAL, _WEEKLY_ROWS.format(merchant="m.id"), order_by=("weekday", "opens")
)
MERCHANT_HOURS_PLAN = KeptPlan(
    name="merchants_hours",
    statement=f"""SELECT r.is_active, {MERCHANT_HOURS.json_sql(alias="r")} FROM (
    SELECT m.is_active, m.timezone, ({_WEEKLY_JSON}) AS weekly
    FROM merchants_merchant m WHERE m.id = %(merchant_id)s
) r""",  # noqa: S608 - fixed fragments only
    types=_MERCHANT_ID,
    returns=_SEEN_ANSWER,
)


def _seen_answer(plan: KeptPlan, *, user, merchant_id: int, **params) -> str | None:
    """The JSON text of the plan's answer (`_SEEN_ANSWER`) of one merchant, None when the
    merchant is unknown or `user` may not see it (`merchant_visible`)."""
    found = _prepared_call(plan).fetch_all({"merchant_id": merchant_id, **params})
    if not found or not _seen_by(user, merchant_id=merchant_id, active=found[0][0]):
        return None
    return found[0][1]


def merchant_detail_json(*, user, merchant_id: int) -> str | None:
    """The merchant's answer (`MERCHANT_OUTPUT`), if `user` may see it."""
    return _seen_answer(
        MERCHANT_DETAIL_PLAN, user=user, merchant_id=merchant_id, **_answer_params()
    )


def merchant_hours_json(*, user, merchant_id: int) -> str | None:
    """The merchant's hours (`MERCHANT_HOURS`), if `user` may see it."""
    return _seen_answer(MERCHANT_HOURS_PLAN, user=user, merchant_id=merchant_id)


# --- delivery slots ---------------------------------------------------------------------


def slot_bookings_overlapping_sql(*, m: str, starts_at: str, ends_at: str) -> str:
    """The condition on `merchants_slotbooking b` that its bookings count against merchant
    `m`'s slot `[starts_at, ends_at)`: its own window overlaps the slot's. A booking keeps
    the window it was booked for, so one booked under another plan or other hours (30
    minutes since made 60, an opening moved by 15 minutes) still takes room in every slot
    it overlaps. Neither a window nor the slot is longer than the longest slot
    (`slot_booking_window`), so an overlapping window starts less than that before or
    after the slot's start: bounds on the primary key's (merchant_id, starts_at) that keep
    the read to a short range of it, known before the slot's end is."""
    longest = f"interval '{int(LONGEST_SLOT.total_seconds()) // 60} minutes'"
    return (
        f"b.merchant_id = {m}"
        f" AND b.starts_at > {starts_at} - {longest} AND b.starts_at < {starts_at} + {longest}"
        f" AND b.starts_at < {ends_at} AND b.ends_at > {starts_at}"
    )


# The local day `%(date)s` of merchant `%(merchant_id)s`: its slots current at `%(at)s`
# (`merchants_slots`, migration 0010), with what is booked of each. The day runs from the
# first instant its clock shows the date to the first it shows the next
# (`merchants_local_instant`, migration 0026): a midnight the clocks repeat (Atlantic/Azores
# going back from 01:00 to 00:00) starts the date at its first showing, one they skip
# (America/Havana going on to 01:00) as they move.
_DAY_SLOTS_SQL = f"""
SELECT s.starts_at, s.ends_at, s.capacity, taken.booked,
       greatest(s.capacity - taken.booked, 0) AS available
FROM merchants_merchant m
CROSS JOIN LATERAL merchants_slots(
    m.id, m.timezone,
    merchants_local_instant(%(date)s::date::timestamp, m.timezone),
    merchants_local_instant((%(date)s::date + 1)::timestamp, m.timezone),
    coalesce(%(at)s::timestamptz, now())
) s
CROSS JOIN LATERAL (
    SELECT coalesce(sum(b.booked), 0)::integer AS booked
    FROM merchants_slotbooking b
    WHERE {slot_bookings_overlapping_sql(m="m.id", starts_at="s.starts_at", ends_at="s.ends_at")}
) taken
WHERE m.id = %(merchant_id)s
ORDER BY s.starts_at
"""  # noqa: S608 - fixed fragments only


def merchant_day_slots(
    *, merchant: Merchant | MerchantRef, day: date, at: datetime | None = None
) -> list[dict]:
    """The merchant's slots starting on its local date `day`, current at the instant
    `at` (now: the transaction's time), in time order: `starts_at, ends_at, capacity,
    booked, available`."""
    return fetch_dicts(_DAY_SLOTS_SQL, {"merchant_id": merchant.pk, "date": day, "at": at})


# The day's slots as the answer's JSON text (`SLOT`s), beside whether the merchant is
# active. Kept: prepared, PostgreSQL planned it on every call (2.3 ms, to run in 1 ms on the
# bench city).
MERCHANT_DAY_SLOTS_PLAN = KeptPlan(
    name="merchants_day_slots",
    statement=f"""SELECT seen.is_active,
    ({json_array_sql(SLOT, _DAY_SLOTS_SQL, order_by=("starts_at",))})
FROM merchants_merchant seen WHERE seen.id = %(merchant_id)s""",  # noqa: S608
    types={**_MERCHANT_ID, "date": "date", "at": "timestamptz"},
    returns=_SEEN_ANSWER,
)


def merchant_day_slots_json(*, user, merchant_id: int, day: date) -> str | None:
    """`merchant_day_slots` now, as the answer's JSON text (an array of `SLOT`s), if `user`
    may see the merchant."""
    return _seen_answer(
        MERCHANT_DAY_SLOTS_PLAN, user=user, merchant_id=merchant_id, date=day, at=None
    )


# The merchants' kept plans (`geomarket.kept_plans`), installed after `migrate`.
KEPT_PLANS = (
    MERCHANT_DETAIL_PLAN,
    MERCHANT_LIST_PLAN,
    MERCHANT_HOURS_PLAN,
    MERCHANT_DAY_SLOTS_PLAN,
    DELIVERING_TO_PLAN,
)


# Merchant `%(merchant_id)s`'s current slot starting at `%(slot_starts_at)s`: one row of
# `ends_at, capacity`, or none. Placing an order asks this in its context read, and the
# booking (`merchants.services.slot_book`) asks it again in the order's transaction.
SLOT_AT_SQL = """
SELECT s.ends_at, s.capacity
FROM merchants_merchant sm
CROSS JOIN LATERAL merchants_slots(
    sm.id, sm.timezone, %(slot_starts_at)s::timestamptz,
    %(slot_starts_at)s::timestamptz + interval '1 microsecond', now()
) s
WHERE sm.id = %(merchant_id)s AND s.starts_at = %(slot_starts_at)s::timestamptz
"""

# What placing an order with merchant `%(merchant_id)s` needs of the clock, as one row of
# `open_now, next_opening_at, slot_ends_at` to join into its context read, by whether the
# order is for a slot (at `%(slot_starts_at)s`). Two statements, not one with both, as
# PostgreSQL plans all of a statement's branches, whichever runs.
MERCHANT_TIMING_SQL = {
    # To deliver now: whether it is open now and, while closed, when it next opens (NULL
    # when not within 14 days).
    False: f"""
SELECT t.open_now,
       CASE WHEN NOT t.open_now
            THEN merchants_next_opening(t.id, t.timezone, now()) END AS next_opening_at,
       NULL::timestamptz AS slot_ends_at
FROM (
    SELECT tm.id, tm.timezone, {OPEN_AT_SQL.format(m="tm", at="now()")} AS open_now
    FROM merchants_merchant tm
    WHERE tm.id = %(merchant_id)s
    -- Not pulled up: `open_now` is computed once, not again in each use.
    OFFSET 0
) t
""",  # noqa: S608 - a fixed fragment only
    # For a slot: its end, NULL when it is not one of the merchant's current slots.
    True: f"""
SELECT NULL::boolean AS open_now, NULL::timestamptz AS next_opening_at,
       (SELECT slot.ends_at FROM ({SLOT_AT_SQL}) slot) AS slot_ends_at
""",  # noqa: S608 - a fixed fragment only
}


# The statements of merchants/nearby and delivering-to and their parameters, from the
# views' validated parameters (`radius` in metres), for the event loop's routes
# (`merchants.lane_routes`) as for Django's connection.
def merchants_nearby_statement(
    *,
    lat: float,
    lng: float,
    radius: float,
    limit: int,
    open_now: bool = False,
    open_at: datetime | None = None,
) -> tuple[str, dict]:
    at = open_instant(open_now=open_now, open_at=open_at)
    params = _geo_params(lat=lat, lng=lng, open_at=at, radius=radius, limit=limit)
    return merchants_nearby_sql(open_at=at is not None), params


def merchants_delivering_to_statement(
    *, lat: float, lng: float, limit: int, open_now: bool = False, open_at: datetime | None = None
) -> tuple[str, dict]:
    at = open_instant(open_now=open_now, open_at=open_at)
    params = _geo_params(
        lat=lat,
        lng=lng,
        open_at=at,
        limit=limit,
        prep_time_default_s=settings.ETA_PREPARATION_SECONDS,
    )
    return DELIVERING_TO_PLAN.call(), params
