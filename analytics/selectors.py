"""Operator reports over delivered orders, dated by delivery time (and the merchants'
failed orders, dated by the time they failed).

The reports read the daily rollups of delivered orders (`analytics.models`, kept by
`analytics.services`): a row per merchant and day, and per merchant, product and day,
rather than every order and item. Each report is one SQL query built from ORM window
expressions over them: PostgreSQL ranks, shares, totals and averages, and renders the
JSON answer too (`json_array_sql`; Python renders the rows only for CSV). A report's
queryset is compiled once per shape (`CompiledQuery`) and run with each call's dates,
merchant and `top`: through Django's connection here, and through the async pool by
`analytics.route`.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connections, transaction
from django.db.models import (
    Avg,
    Case,
    DateField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    RowRange,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, DenseRank, NullIf
from django.db.models.lookups import GreaterThan
from django.db.models.sql.constants import INNER, LOUTER
from django_cte import CTE, with_cte
from django_cte.raw import raw_cte_sql

from analytics.models import MerchantDay, MerchantTotal, PlatformDay, ProductDay, ReportPeriod
from analytics.shapes import MERCHANT_ROW, REVENUE_ROW, TOP_PRODUCT_ROW
from catalog.models import Product
from geomarket.accounts.selectors import KEY_STAND_IN, operator_tokens
from geomarket.db.replicas import read_alias, replica_reads
from geomarket.shapes import Shape, json_array_sql
from geomarket.sql import CompiledQuery, Lateral, fetch_all, fetch_utf8, fetch_utf8_row
from merchants.models import Merchant

INTERVALS = ("day", "week", "month")


@dataclass(frozen=True)
class DateRange:
    """Inclusive dates in UTC, as half-open datetimes for index-friendly comparisons."""

    date_from: date
    date_to: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC)

    def values(self) -> dict:
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class Statement:
    sql: str
    params: list


# What a compiled report is built with in place of each call's own values: none is a
# value a call passes (reports cover recent years; ids and `top` stay far below these).
STAND_IN_RANGE = DateRange(date(1901, 2, 3), date(1903, 4, 5))
STAND_INS = {
    **STAND_IN_RANGE.values(),
    "merchant_id": 2_000_000_011,
    "top": 2_000_000_033,
    "operator_key": KEY_STAND_IN,
}


def _compiled(
    queryset, *names: str, by_merchant: bool, guarded: bool = False, ordered: bool = True
) -> CompiledQuery:
    """`queryset` compiled with the stand-ins `names` (and `merchant_id`) in it.

    Unordered, for a JSON answer: `json_array_sql` orders the rows as it aggregates
    them, and PostgreSQL 15 sorts an aggregate's input whatever order it comes in, so
    a sort of the rows before was a second one (for every merchant's top products
    over 90 days on the bench city, 177,000 rows).

    A guarded report returns rows only for a caller holding the API token
    `operator_key` of an active operator: the event-loop route checks the caller in
    the report's own round trip. The check does not depend on any row, so PostgreSQL
    runs it first, once, and reads no rollups for anyone else.
    """
    if not ordered:
        queryset = queryset.order_by()
    if guarded:
        queryset = queryset.filter(Exists(operator_tokens(key=STAND_INS["operator_key"])))
        names += ("operator_key",)
    if by_merchant:
        names += ("merchant_id",)
    return CompiledQuery(queryset, slots={name: STAND_INS[name] for name in names})


def _days(model, range_: DateRange, merchant_id: int | None = None):
    """The rollup rows of `model` for the range's days (and one merchant)."""
    rows = model.objects.filter(day__gte=range_.date_from, day__lte=range_.date_to)
    if merchant_id is not None:
        rows = rows.filter(merchant_id=merchant_id)
    return rows


class PeriodOf(Func):
    """The first day of the week (a Monday) or month holding a day: `date_trunc` of the
    day as a timestamp without time zone, as the orders' UTC delivery times were
    truncated, whatever the session's time zone."""

    output_field = DateField()

    def __init__(self, day, interval: str):
        super().__init__(Value(interval), day)

    def as_sql(self, compiler, connection, **extra_context):
        (interval_sql, interval_params), (day_sql, day_params) = (
            compiler.compile(expression) for expression in self.source_expressions
        )
        return (
            f"date_trunc({interval_sql}, {day_sql}::timestamp)::date",
            (*interval_params, *day_params),
        )


class IntervalPer(Func):
    """An interval divided by a count, as PostgreSQL's AVG over intervals divides their
    sum: the average of the orders' delivery times from the sum of their rollups."""

    template = "(%(expressions)s)"
    arg_joiner = " / "
    output_field = DurationField()

    def __init__(self, total, count):
        super().__init__(total, Func(count, template="(%(expressions)s)::float8"))


def fetch_rows(statement: Statement) -> list[tuple]:
    return fetch_all(statement.sql, statement.params)


# --- top products -------------------------------------------------------------------


def _top_products_queryset(*, range_: DateRange, merchant_id: int | None, top: int):
    """Best sellers per merchant by units, dense-ranked within the merchant.

    1. Sum the product days per (merchant_id, product_id), ids only. Grouping by the
       names too would join them to every row and carry them through the aggregate.
    2. Rank within the merchant; PostgreSQL stops reading a partition past `top`.
    3. Join the names to the ranked rows that pass the rank filter (`ranked`): the
       merchants hashed once, each product's title looked up by its key. Looked up
       inside the ranking query instead, they were evaluated for the rows the window
       passed through as well (252,000 against 177,000 returned for every merchant of
       the bench city over 90 days), a probe of the merchants for each.
    """
    ranked = CTE(
        _days(ProductDay, range_, merchant_id)
        .values("merchant_id", "product_id")
        .annotate(units_sold=Sum("units"), revenue=Sum("revenue"))
        .annotate(
            rank=Window(DenseRank(), partition_by=F("merchant_id"), order_by=F("units_sold").desc())
        )
        .filter(rank__lte=top)
        .order_by(),
        name="ranked",
    )
    merchants = ranked.join(Merchant.objects.all(), pk=ranked.col.merchant_id)
    return (
        with_cte(ranked, select=merchants)
        .annotate(
            merchant_id=ranked.col.merchant_id,
            merchant_name=F("name"),
            product_id=ranked.col.product_id,
            title=Subquery(Product.objects.filter(pk=OuterRef("product_id")).values("title")),
            units_sold=ranked.col.units_sold,
            revenue=ranked.col.revenue,
            rank=ranked.col.rank,
        )
        .order_by("merchant_id", "rank", "product_id")
        .values_list(*TOP_PRODUCT_ROW.columns)
    )


@functools.cache
def _top_products_compiled(*, by_merchant: bool, guarded: bool, ordered: bool) -> CompiledQuery:
    queryset = _top_products_queryset(
        range_=STAND_IN_RANGE,
        merchant_id=STAND_INS["merchant_id"] if by_merchant else None,
        top=STAND_INS["top"],
    )
    names = ("date_from", "date_to", "top")
    return _compiled(queryset, *names, by_merchant=by_merchant, guarded=guarded, ordered=ordered)


def top_products_statement(
    *,
    range_: DateRange,
    merchant_id: int | None = None,
    top: int = 5,
    operator_key: str | None = None,
    ordered: bool = True,
) -> Statement:
    compiled = _top_products_compiled(
        by_merchant=merchant_id is not None, guarded=operator_key is not None, ordered=ordered
    )
    return Statement(
        compiled.sql,
        compiled.params(
            **range_.values(), merchant_id=merchant_id, top=top, operator_key=operator_key
        ),
    )


@functools.cache
def _top_products_json_sql(rows_sql: str) -> str:
    return json_array_sql(TOP_PRODUCT_ROW, rows_sql, order_by=("merchant_id", "rank", "product_id"))


def top_products_json_statement(
    *,
    range_: DateRange,
    merchant_id: int | None = None,
    top: int = 5,
    operator_key: str | None = None,
) -> Statement:
    """The statement of the top-products report's JSON answer, as one text value."""
    rows = top_products_statement(
        range_=range_, merchant_id=merchant_id, top=top, operator_key=operator_key, ordered=False
    )
    return Statement(_top_products_json_sql(rows.sql), rows.params)


@replica_reads
def top_products(*, range_: DateRange, merchant_id: int | None = None, top: int = 5) -> list[dict]:
    statement = top_products_statement(range_=range_, merchant_id=merchant_id, top=top)
    return TOP_PRODUCT_ROW.render_rows(fetch_rows(statement))


# --- revenue ------------------------------------------------------------------------


def _revenue_queryset(*, range_: DateRange, interval: str, merchant_id: int | None):
    """Orders and revenue per period, with a running total and a 7-period moving average.

    The periods come from `generate_series` (the `report_periods` expression that
    `ReportPeriod` reads), so that periods without orders are rows, with zeros, before
    the windows are taken over them. The merchant days are summed per period first, on
    their own.
    """
    periods = CTE(
        raw_cte_sql(
            "SELECT generate_series(date_trunc(%s, %s::timestamp), date_trunc(%s, %s::timestamp),"
            " %s::interval)::date AS period",
            [interval, range_.date_from, interval, range_.date_to, f"1 {interval}"],
            {"period": DateField()},
        ),
        name=ReportPeriod._meta.db_table,
    )
    # Every merchant's days are the platform's, a few rows a day.
    days = (
        _days(PlatformDay, range_)
        if merchant_id is None
        else _days(MerchantDay, range_, merchant_id)
    )
    per_period = CTE(
        days.annotate(period=F("day") if interval == "day" else PeriodOf(F("day"), interval))
        .values("period")
        .annotate(orders=Sum("orders"), revenue=Sum("revenue"))
        .order_by(),
        name="delivered",
    )
    revenue = Coalesce(per_period.col.revenue, Value(0, output_field=DecimalField()))
    in_order = F("period").asc()
    return (
        with_cte(
            periods,
            per_period,
            select=per_period.join(
                ReportPeriod.objects.all(), period=per_period.col.period, _join_type=LOUTER
            ),
        )
        .annotate(
            orders=Coalesce(per_period.col.orders, 0),
            revenue=revenue,
            running_revenue=Window(Sum(revenue), order_by=in_order),
            moving_avg_7=Window(Avg(revenue), order_by=in_order, frame=RowRange(start=-6, end=0)),
        )
        .order_by("period")
        .values_list(*REVENUE_ROW.columns)
    )


@functools.cache
def _revenue_compiled(
    *, interval: str, by_merchant: bool, guarded: bool, ordered: bool
) -> CompiledQuery:
    queryset = _revenue_queryset(
        range_=STAND_IN_RANGE,
        interval=interval,
        merchant_id=STAND_INS["merchant_id"] if by_merchant else None,
    )
    names = ("date_from", "date_to")
    return _compiled(queryset, *names, by_merchant=by_merchant, guarded=guarded, ordered=ordered)


def revenue_statement(
    *,
    range_: DateRange,
    interval: str = "day",
    merchant_id: int | None = None,
    operator_key: str | None = None,
    ordered: bool = True,
) -> Statement:
    compiled = _revenue_compiled(
        interval=interval,
        by_merchant=merchant_id is not None,
        guarded=operator_key is not None,
        ordered=ordered,
    )
    return Statement(
        compiled.sql,
        compiled.params(**range_.values(), merchant_id=merchant_id, operator_key=operator_key),
    )


@functools.cache
def _revenue_json_sql(rows_sql: str) -> str:
    return json_array_sql(REVENUE_ROW, rows_sql, order_by=("period",))


def revenue_json_statement(
    *,
    range_: DateRange,
    interval: str = "day",
    merchant_id: int | None = None,
    operator_key: str | None = None,
) -> Statement:
    """The statement of the revenue report's JSON answer, as one text value."""
    rows = revenue_statement(
        range_=range_,
        interval=interval,
        merchant_id=merchant_id,
        operator_key=operator_key,
        ordered=False,
    )
    return Statement(_revenue_json_sql(rows.sql), rows.params)


@replica_reads
def revenue_report(
    *, range_: DateRange, interval: str = "day", merchant_id: int | None = None
) -> list[dict]:
    statement = revenue_statement(range_=range_, interval=interval, merchant_id=merchant_id)
    return REVENUE_ROW.render_rows(fetch_rows(statement))


# --- merchants ----------------------------------------------------------------------


TOTALS = ("orders_to_date", "revenue_to_date", "delivery_time_to_date", "failed_to_date")


def _totals(*, before: str, day: date, name: str, join_type: str, only_if=None) -> Lateral:
    """The running totals of each merchant's last day `before` `day` (`lt` or `lte`),
    probed only for the merchants meeting `only_if` (a condition on the outer row)."""
    days = MerchantDay.objects.filter(merchant_id=OuterRef("pk"), **{f"day__{before}": day})
    if only_if is not None:
        days = days.filter(only_if)
    return Lateral(days.order_by("-day").values(*TOTALS)[:1], name=name, join_type=join_type)


def _merchants_queryset(*, range_: DateRange):
    """Merchants by revenue, share of the total and delivery time, with their failures.

    A merchant's sums over the range are its running totals at its last day up to the
    range's end minus those at its last day before the range's start
    (`MerchantDay.orders_to_date`), joined LATERAL (the ORM's scalar subqueries would
    probe once for each column). The totals to the end are the merchant's latest
    (`MerchantTotal`, joined) when the range ends on or after its last day, as the last
    N days up to today always do; only a range ending earlier probes its days for them.
    So a merchant costs one index probe, before the start, where it cost two. A
    merchant with nothing up to the end has no row; one with nothing before the start
    takes zeros. A merchant is listed when it delivered or failed an order in the range:
    one that only failed has no orders, revenue nor delivery time, and ranks last.
    """
    latest = Lateral(
        MerchantTotal.objects.filter(merchant_id=OuterRef("pk")).values("day", *TOTALS),
        name="latest",
        join_type=INNER,
    )
    ends_after_range = GreaterThan(latest.col("day"), Value(range_.date_to))
    earlier = _totals(
        before="lte",
        day=range_.date_to,
        name="to_end",
        join_type=LOUTER,
        only_if=ends_after_range,
    )
    before_start = _totals(before="lt", day=range_.date_from, name="before_start", join_type=LOUTER)

    def in_range(column: str, zero):
        to_end = Case(
            When(ends_after_range, then=earlier.col(column)),
            default=latest.col(column),
            output_field=latest.col(column).output_field,
        )
        return to_end - Coalesce(before_start.col(column), zero)

    orders = in_range("orders_to_date", Value(0))
    revenue = in_range("revenue_to_date", Value(0, output_field=DecimalField()))
    delivery_time = in_range("delivery_time_to_date", Value(timedelta(0)))
    failed = in_range("failed_to_date", Value(0))
    merchants = before_start.join(earlier.join(latest.join(Merchant.objects.all())))
    # Every merchant's revenue over the range, read from the platform's days (a few rows
    # a day) rather than summed over the merchants' rows by a window, which held all of
    # them once more. The two are the same sum of the same delivered orders' totals:
    # each delivery adds to both in one statement, and a rebuild makes both again.
    platform_revenue = Subquery(
        _days(PlatformDay, range_).values(
            total=Func(F("revenue"), function="SUM", output_field=DecimalField())
        )
    )
    return (
        merchants.annotate(
            merchant_id=F("pk"),
            delivered_orders=orders,
            revenue=revenue,
            avg_delivery=IntervalPer(delivery_time, NullIf(orders, Value(0))),
            failed_orders=failed,
            failure_rate=ExpressionWrapper(
                Func(F("failed_orders"), template="(%(expressions)s)::numeric")
                / NullIf(F("delivered_orders") + F("failed_orders"), Value(0)),
                output_field=DecimalField(),
            ),
        )
        .filter(Q(delivered_orders__gt=0) | Q(failed_orders__gt=0))
        .annotate(
            revenue_share=ExpressionWrapper(
                F("revenue") / NullIf(platform_revenue, Value(0)), output_field=DecimalField()
            ),
            rank=Window(DenseRank(), order_by=F("revenue").desc()),
        )
        .order_by("rank", "merchant_id")
        .values_list(*MERCHANT_ROW.columns)
    )


@functools.cache
def _merchants_compiled(*, ordered: bool) -> CompiledQuery:
    queryset = _merchants_queryset(range_=STAND_IN_RANGE)
    return _compiled(queryset, "date_from", "date_to", by_merchant=False, ordered=ordered)


def merchants_statement(*, range_: DateRange, ordered: bool = True) -> Statement:
    compiled = _merchants_compiled(ordered=ordered)
    return Statement(compiled.sql, compiled.params(**range_.values()))


@functools.cache
def _merchants_json_sql(rows_sql: str) -> str:
    return json_array_sql(MERCHANT_ROW, rows_sql, order_by=("rank", "merchant_id"))


def merchants_json_statement(*, range_: DateRange) -> Statement:
    """The statement of the merchants report's JSON answer, as one text value: every
    merchant is a row, and PostgreSQL renders twenty thousand of them in a fraction of
    what rendering them in Python takes."""
    rows = merchants_statement(range_=range_, ordered=False)
    return Statement(_merchants_json_sql(rows.sql), rows.params)


@replica_reads
def merchants_report(*, range_: DateRange) -> list[dict]:
    return MERCHANT_ROW.render_rows(fetch_rows(merchants_statement(range_=range_)))


@replica_reads
def json_answer(statement: Statement) -> bytes:
    """The JSON text a report's `*_json_statement` renders, as UTF-8 bytes (`fetch_utf8`)."""
    return fetch_utf8(statement.sql, statement.params)


# --- the three in one ---------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A report of `orders/analytics`: its key in the answer, its rows' shape, and the
    statements of its rows and of its JSON answer, given the range alone."""

    name: str
    shape: Shape
    statement: Callable[..., Statement]
    json_statement: Callable[..., Statement]


COMBINED_PARTS = (
    Part("top_products", TOP_PRODUCT_ROW, top_products_statement, top_products_json_statement),
    Part("revenue", REVENUE_ROW, revenue_statement, revenue_json_statement),
    Part("merchants", MERCHANT_ROW, merchants_statement, merchants_json_statement),
)


def combined_json_statement(*, range_: DateRange) -> Statement:
    """One row of the parts' JSON texts, in the answer's order. One statement reads one
    snapshot: run one by one, the parts could each see a delivery the others did not, or
    be read on different replicas, and disagree within one answer."""
    parts = [part.json_statement(range_=range_) for part in COMBINED_PARTS]
    return Statement(
        "SELECT " + ", ".join(f"({part.sql})" for part in parts),
        [param for part in parts for param in part.params],
    )


@replica_reads
def combined_json_answer(*, range_: DateRange) -> bytes:
    """`orders/analytics` as JSON: the parts' texts joined as the JSON renderer would
    join them, in one copy."""
    statement = combined_json_statement(range_=range_)
    texts = fetch_utf8_row(statement.sql, statement.params)
    pieces = [b"{"]
    for index, (part, text) in enumerate(zip(COMBINED_PARTS, texts, strict=True)):
        pieces += [b"," if index else b"", b'"%s":' % part.name.encode(), text]
    return b"".join([*pieces, b"}"])


@replica_reads
def combined_report(*, range_: DateRange) -> dict[str, list[dict]]:
    """The parts' rows (for CSV), read in one snapshot (`combined_json_statement`): a
    read-only transaction at REPEATABLE READ on the one connection they are read from."""
    alias = read_alias()
    # Inside a caller's transaction the parts read that transaction's snapshots.
    own = not connections[alias].in_atomic_block
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        if own:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return {
            part.name: part.shape.render_rows(fetch_rows(part.statement(range_=range_)))
            for part in COMBINED_PARTS
        }
