import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import BigIntegerField, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.query import FlatValuesListIterable, ModelIterable, ValuesIterable
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from geomarket.api.fields import parse_integer, single_value


class PageNumberPagination(pagination.PageNumberPagination):
    """The contract's page shape: `{count, page, page_size, total_pages, next, previous, results}`.

    A malformed `page` or `page_size` is a 400 field error; a page past the end is 404.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        return _page_size(single_value(request.query_params, self.page_size_query_param))

    def paginate_queryset(self, queryset, request, view=None):
        raw_page = single_value(request.query_params, self.page_query_param)
        if raw_page not in (None, "", "last"):
            _positive_int(raw_page, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)

    # The URL the page's links are built from (`page_url`); None for the request's own.
    link_base: str | None = None

    def _link_base(self) -> str:
        return self.link_base or self.request.build_absolute_uri()

    def get_next_link(self):
        return page_links(
            self._link_base(), number=self.page.number, total_pages=self.page.paginator.num_pages
        )[0]

    def get_previous_link(self):
        return page_links(
            self._link_base(), number=self.page.number, total_pages=self.page.paginator.num_pages
        )[1]

    def get_paginated_response(self, data):
        return Response(
            page_body(
                count=self.page.paginator.count,
                number=self.page.number,
                page_size=self.page.paginator.per_page,
                link_base=self._link_base(),
                results=data,
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "page", "page_size", "total_pages", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "page": {"type": "integer", "example": 1},
                "page_size": {"type": "integer", "example": 20},
                "total_pages": {"type": "integer", "example": 7},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


# The largest `page` or `page_size` read; the OpenAPI schema states it too.
PAGE_PARAMETER_MAX = 10**9


def _positive_int(raw: str, field: str) -> int:
    try:
        value = parse_integer(raw)
    except ValueError:
        raise ValidationError({field: ["A positive integer is required."]}) from None
    if value < 1 or value > PAGE_PARAMETER_MAX:
        raise ValidationError({field: ["A positive integer is required."]})
    return value


def _page_size(raw: str | None) -> int:
    paging = PageNumberPagination
    if raw is None or raw == "":
        return paging.page_size
    return min(_positive_int(raw, paging.page_size_query_param), paging.max_page_size)


def plain_page_request(given: Mapping[str, str]) -> tuple[int, int] | None:
    """The page number and page size that the query parameters `given` ask for, as the
    paginator reads them; None for what only the paginator answers (`page=last`, which
    needs the count first, and malformed values, which it refuses)."""
    raw_page = given.get(PageNumberPagination.page_query_param)
    try:
        number = _positive_int(raw_page, PageNumberPagination.page_query_param) if raw_page else 1
        return number, _page_size(given.get(PageNumberPagination.page_size_query_param))
    except ValidationError:
        return None


def page_url(request, params: Iterable[str]) -> str:
    """The request's absolute URL with only the query parameters `params` (a filter
    serializer's field names) and the paginator read, as given, sorted as the links sort
    them: all that one page of an answer and its links depend on, so an answer shared by
    requests with the same `page_url` carries none of another caller's parameters."""
    return page_link_base(request.build_absolute_uri(request.path), request.query_params, params)


def page_link_base(url: str, given: Mapping[str, str], params: Iterable[str]) -> str:
    """`page_url` of the absolute `url` of a path and the query parameters `given`; a 400
    naming one that a query string gives more than once."""
    paging = PageNumberPagination
    names = (*params, paging.page_query_param, paging.page_size_query_param)
    # Read once each, as the paginator reads them: an answer kept under this URL is
    # looked up before the paginator runs, and `?page=1&page=2` must not be answered with
    # the page kept for `?page=2`.
    query = sorted((name, single_value(given, name)) for name in names if name in given)
    return f"{url}?{urlencode(query)}" if query else url


def total_pages(count: int, page_size: int) -> int:
    """Django's `Paginator.num_pages` (no orphans, an empty first page allowed)."""
    return max(1, math.ceil(count / page_size))


def page_links(link_base: str, *, number: int, total_pages: int) -> tuple[str | None, str | None]:
    """The `next` and `previous` links of page `number`, built from `link_base`."""
    page = PageNumberPagination.page_query_param
    following = replace_query_param(link_base, page, number + 1) if number < total_pages else None
    if number <= 1:
        return following, None
    if number == 2:
        return following, remove_query_param(link_base, page)
    return following, replace_query_param(link_base, page, number - 1)


def page_body(*, count: int, number: int, page_size: int, link_base: str, results) -> dict:
    """The contract's page shape, for Django's paginator and for pages read elsewhere."""
    pages = total_pages(count, page_size)
    following, preceding = page_links(link_base, number=number, total_pages=pages)
    return {
        "count": count,
        "page": number,
        "page_size": page_size,
        "total_pages": pages,
        "next": following,
        "previous": preceding,
        "results": results,
    }


@dataclass(frozen=True)
class CountedPage:
    """One page of rows and the count of all of them, read by one statement; the count
    is exact unless `count_is_estimate`."""

    rows: Sequence
    count: int
    count_is_estimate: bool = False


class CountedPages:
    """Pages as Django's Paginator reads them (`count()`, then one slice), each page and
    the count from one statement: `fetch(offset=, limit=)` returns a `CountedPage`, and
    `render` turns its rows into the answer's objects.

    The page the request names is read up front (`requested_offset`); a slice of another
    page (`page=last`, known only from the count) reads that one. The count does not
    depend on the page, so both reads agree on it.
    """

    def __init__(
        self,
        fetch: Callable[..., CountedPage],
        *,
        render: Callable[[Sequence], list],
        offset: int,
        limit: int,
    ):
        self.fetch = fetch
        self.render = render
        self.limit = limit
        self._read(offset)

    def _read(self, offset: int) -> None:
        self.offset = offset
        self.page = self.fetch(offset=offset, limit=self.limit)

    @property
    def count_is_estimate(self) -> bool:
        return self.page.count_is_estimate

    def count(self) -> int:
        return self.page.count

    def __getitem__(self, window: slice) -> list:
        if window.start != self.offset:
            self._read(window.start)
        return self.render(self.page.rows[: window.stop - window.start])


def requested_offset(request, page_size: int) -> int:
    """The offset of the page the request names; 0 for the first, the last (which needs
    the count first) or a page number the paginator will refuse."""
    raw = request.query_params.get(PageNumberPagination.page_query_param)
    try:
        number = parse_integer(raw or "")
    except ValueError:
        return 0
    return (number - 1) * page_size if 1 <= number <= PAGE_PARAMETER_MAX else 0


def counted_page_body(
    *,
    request,
    view,
    fetch: Callable[..., CountedPage],
    render: Callable[[Sequence], list],
    url: str | None = None,
    flag_estimate: bool = False,
) -> dict:
    """The contract's page body for the page the request names, read with its count by
    one statement (`CountedPages`); with `count_is_estimate` when `flag_estimate`."""
    paginator = PageNumberPagination()
    paginator.link_base = url
    page_size = paginator.get_page_size(request)
    pages = CountedPages(
        fetch, render=render, offset=requested_offset(request, page_size), limit=page_size
    )
    results = paginator.paginate_queryset(pages, request, view=view)
    body = paginator.get_paginated_response(results).data
    return with_estimate_flag(body, pages.count_is_estimate) if flag_estimate else body


def paginated_response(
    *,
    request,
    view,
    queryset,
    serializer_class=None,
    render=None,
    context=None,
    url: str | None = None,
):
    """Render one page of `queryset` in the contract's page shape, with `serializer_class`
    or with `render` (a function from the page's rows to their objects, held equal to the
    schema's serializer by a test); its links are built from `url` (see `page_url`) when
    given, else from the request's URL. A QuerySet's page and its count are read by one
    statement (`queryset_page`)."""
    if render is None:

        def render(rows):
            return serializer_class(rows, many=True, context=context or {"request": request}).data

    if isinstance(queryset, QuerySet) and queryset._iterable_class in _COUNTABLE_ROWS:
        body = counted_page_body(
            request=request,
            view=view,
            fetch=functools.partial(queryset_page, queryset),
            render=render,
            url=url,
        )
        return Response(body)
    paginator = PageNumberPagination()
    paginator.link_base = url
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(render(page))


# The name the count of all rows takes in a page's rows (`queryset_page`), and the
# querysets whose rows can carry it: models, dicts, and single values (`flat=True`), read
# as pairs with it; a tuple of `values_list` holds only the fields it names.
_COUNT = "matched_count"
# Each as the row and the count (`rows_with_count`).
_COUNT_SPLITS = {
    ModelIterable: lambda row: (row, getattr(row, _COUNT)),
    ValuesIterable: lambda row: (row, row[_COUNT]),
    FlatValuesListIterable: tuple,
}
_COUNTABLE_ROWS = tuple(_COUNT_SPLITS)


def rows_with_count(
    rows: Sequence, *, offset: int, split: Callable, count_alone: Callable[[], int]
) -> CountedPage:
    """A page read with the count of all rows in each of its rows (`split(row)` gives the
    row without it and the count). A page past the end (its 404) needs the count alone,
    `count_alone()`; an empty first page has none."""
    if rows:
        return CountedPage(rows=[split(row)[0] for row in rows], count=split(rows[0])[1])
    return CountedPage(rows=[], count=count_alone() if offset else 0)


def count_sql(rows_sql: str) -> str:
    """A statement counting the rows `rows_sql` reads (best over their keys alone)."""
    return f"SELECT count(*) FROM ({rows_sql}) matched"  # noqa: S608 - compiled SQL only


def queryset_page(
    queryset: QuerySet, *, offset: int, limit: int, count_bound: int | None = None
) -> CountedPage:
    """Rows `offset` to `offset + limit` of `queryset` and the count of all its rows, in
    one statement: the count is a subquery of the page (uncorrelated, so PostgreSQL runs
    it once, as an InitPlan), over the queryset's primary keys alone, so no column of the
    answer is computed for rows off the page. With `count_bound`, the count is exact up
    to it and the planner's estimate past it (`count_is_estimate`)."""
    matches = queryset.order_by().values("pk")
    counted = matches if count_bound is None else matches[: count_bound + 1]
    try:
        matches_sql, count_params = counted.query.sql_with_params()
    except EmptyResultSet:
        # A filter no row can meet (`none()`, `pk__in=[]`): Django sends no statement.
        return CountedPage(rows=[], count=0)
    count = RawSQL(  # noqa: S611 - a statement compiled by the ORM
        count_sql(matches_sql), count_params, output_field=BigIntegerField()
    )
    counting = queryset.annotate(**{_COUNT: count})
    if queryset._iterable_class is FlatValuesListIterable:
        counting = counting.values_list(*queryset._fields, _COUNT)
    page = rows_with_count(
        list(counting[offset : offset + limit]),
        offset=offset,
        split=_COUNT_SPLITS[queryset._iterable_class],
        count_alone=counted.count,
    )
    rows, found = page.rows, page.count
    estimated = count_bound is not None and found > count_bound
    if estimated:
        sql, params = matches.query.sql_with_params()
        found = max(planner_estimate(sql, params, using=queryset.db), found)
    return CountedPage(rows=rows, count=found, count_is_estimate=estimated)


def planner_estimate(sql: str, params, *, using: str = "default") -> int:
    """How many rows PostgreSQL's planner expects `sql` to return."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return int(plan[0]["Plan"]["Plan Rows"])


ESTIMATED_COUNT_HELP = (
    "True when `count` is an estimate: the matches are counted exactly up to a bound, "
    "and estimated past it. `total_pages`, `next` and `previous` follow the count given."
)


def with_estimate_flag(body: dict, estimated: bool) -> dict:
    """A page's `body` with `count_is_estimate` after its `count`."""
    flagged = {"count": body["count"], "count_is_estimate": estimated}
    flagged.update(body)
    return flagged


@functools.cache
def page_of(item_serializer, *, estimated_count: bool = False, name: str | None = None):
    """The OpenAPI shape of one page of `item_serializer` rows, for `extend_schema`;
    with `count_is_estimate` when the count may be an estimate (`with_estimate_flag`).
    `name` tells apart pages of the same rows whose shapes differ."""
    name = name or item_serializer.__name__.removesuffix("Serializer")
    estimate = (
        {"count_is_estimate": serializers.BooleanField(help_text=ESTIMATED_COUNT_HELP)}
        if estimated_count
        else {}
    )
    return inline_serializer(
        name=f"{name}Page",
        fields={
            "count": serializers.IntegerField(),
            **estimate,
            "page": serializers.IntegerField(),
            "page_size": serializers.IntegerField(),
            "total_pages": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item_serializer(many=True),
        },
    )
