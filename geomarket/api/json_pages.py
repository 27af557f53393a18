"""Pages whose rows PostgreSQL renders as JSON from a declared shape (`geomarket.shapes`),
read with their count by one statement compiled once, and answered in the contract's
page shape.

A page of twenty orders built as ORM rows and rendered by Python cost several times its
SQL: building and compiling the queryset, converting each row's values, and rendering
each field. Here the queryset is compiled once per variant (`CompiledQuery`) into a
statement the connection prepares (`PreparedStatement`), and each request sends its
values, reads one row (the count and the page's JSON text) and writes it out around the
page's links.
"""

from collections.abc import Callable

from django.db.models import QuerySet
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer

from geomarket.api.pagination import CountedPage, counted_page_body, planner_estimate
from geomarket.shapes import Shape, json_array_sql
from geomarket.sql import CompiledCount, CompiledQuery, PreparedStatement


def _ordering(queryset: QuerySet) -> tuple[str, ...]:
    # The page's rows are aggregated in the queryset's own order (its fields, which the
    # rows read under the same names).
    return tuple(
        f"{name[1:]} DESC" if name.startswith("-") else name for name in queryset.query.order_by
    )


class CompiledJsonPages:
    """Pages of `queryset` (filtered and ordered), each the JSON array of `shape`'s
    objects rendered by PostgreSQL from `rows(queryset)` (a `values()` queryset reading
    the shape's sources and the ordering's fields), read with the count of all its rows
    by one statement. Both are compiled once with the stand-ins `slots`
    (`CompiledQuery`), and each read fills in its own values. Pages `bounded` are read
    with a `count_bound`: the count is exact up to it and the planner's estimate past it
    (`count_is_estimate`). A `guard` (compiled with the same values' stand-ins) is read
    by the same statement: where it has no row, `read` answers None (a caller who may
    not see what the list belongs to), at no round trip of its own."""

    def __init__(
        self,
        shape: Shape,
        queryset: QuerySet,
        *,
        rows: Callable[[QuerySet], QuerySet],
        slots: dict[str, object],
        bounded: bool = False,
        guard: CompiledQuery | None = None,
    ):
        self._count = CompiledCount(queryset, slots=slots, bounded=bounded)
        self._rows = CompiledQuery(rows(queryset), slots=slots)
        self._bounded = bounded
        self._guard = guard
        page = json_array_sql(
            shape, f"{self._rows.sql} LIMIT %s OFFSET %s", order_by=_ordering(queryset)
        )
        guarded = "" if guard is None else f"EXISTS ({guard.sql}), "
        # Only compiled statements and a declared shape go in.
        self.statement = PreparedStatement(f"SELECT {guarded}({self._count.sql}), ({page})")

    def read(
        self, *, offset: int, limit: int, count_bound: int | None = None, **values
    ) -> CountedPage | None:
        """The page's JSON text as its one row, and the count, for the slots' `values`;
        None where the `guard` has no row."""
        if (count_bound is not None) != self._bounded:
            raise ValueError("a count_bound is given exactly to bounded pages")
        bound = [count_bound + 1] if self._bounded else []
        params = [
            *(self._guard.params(**values) if self._guard else []),
            *self._count.params(**values),
            *bound,
            *self._rows.params(**values),
            limit,
            offset,
        ]
        (row,) = self.statement.fetch_all(params)
        if self._guard is not None:
            passed, *row = row
            if not passed:
                return None
        found, page = row
        estimated = self._bounded and found > count_bound
        if estimated:
            matches = self._count.matches
            found = max(planner_estimate(matches.sql, matches.params(**values)), found)
        return CountedPage(rows=[page], count=found, count_is_estimate=estimated)


def counted_json_page(
    *, request, view, fetch: Callable[..., CountedPage], flag_estimate: bool = False
) -> HttpResponse:
    """`counted_page_body`'s answer for pages read by `CompiledJsonPages.read`: the
    page's JSON text is written into the body as PostgreSQL rendered it."""
    body = counted_page_body(
        request=request, view=view, fetch=fetch, render=list, flag_estimate=flag_estimate
    )
    # An empty page (no row to read on the first page) holds no text.
    results = body.pop("results") or ["[]"]
    envelope = JSONRenderer().render(body)
    content = b'%s,"results":%s}' % (envelope[:-1], results[0].encode())
    return HttpResponse(content, content_type="application/json")
