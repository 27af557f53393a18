"""Raw SQL for the hot reads whose joins the ORM cannot express (LATERAL, KNN walks), and
ORM querysets compiled once and run many times (`CompiledQuery`)."""

import re
from collections.abc import Sequence
from typing import NamedTuple

from django.db import InternalError, connections, transaction
from django.db.models import BigIntegerField, Field, Subquery
from django.db.models.expressions import Col, RawSQL
from django.db.models.sql.constants import INNER
from django_cte.join import QJoin
from psycopg.adapt import Loader
from psycopg.sql import Literal

from geomarket.api.pagination import CountedPage, count_sql, rows_with_count
from geomarket.db.replicas import read_alias

# PostGIS's GiST distance for a geography entry can come out a rounding error above the
# distance it rechecks it with, and PostgreSQL then stops a scan walked in `<->` order with
# this error (a fuzzed city of points stacked on the query point met it). The statement is
# run once more with index scans off, so that `<->` is computed for each row and sorted:
# the same rows in the same order, found without the walk.
KNN_ORDER_ERROR = "index returned tuples in wrong order"


def _read_cursor():
    """A cursor of the primary, or of a replica inside a selector marked `replica_reads`."""
    return connections[read_alias()].cursor()


def _execute(cursor, sql: str, params) -> None:
    try:
        cursor.execute(sql, params)
    except InternalError as exc:
        # Inside a transaction the failed walk has aborted it: nothing can run again there.
        if KNN_ORDER_ERROR not in str(exc) or cursor.db.in_atomic_block:
            raise
        with transaction.atomic(using=cursor.db.alias):
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute(sql, params)


def fetch_dicts(sql: str, params: dict) -> list[dict]:
    """Rows of `sql` as dicts keyed by column name."""
    with _read_cursor() as cursor:
        _execute(cursor, sql, params)
        return _dict_rows(cursor)


def _dict_rows(cursor) -> list[dict]:
    columns = [column.name for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def fetch_all(sql: str, params: dict | list) -> list[tuple]:
    with _read_cursor() as cursor:
        _execute(cursor, sql, params)
        return cursor.fetchall()


def point_ewkt(*, lat: float, lng: float) -> str:
    """A WGS84 point literal for `%(point)s::geography` parameters."""
    return f"SRID=4326;POINT({lng!r} {lat!r})"


def fetch_value(sql: str, params: dict):
    """The first column of the first row of `sql`."""
    with _read_cursor() as cursor:
        _execute(cursor, sql, params)
        return cursor.fetchone()[0]


class _Utf8Loader(Loader):
    """A text value as the bytes PostgreSQL sent, UTF-8 (Django's connections ask for it)."""

    def load(self, data) -> bytes:
        return bytes(data)


def fetch_utf8_row(sql: str, params: dict | list) -> tuple | None:
    """The first row of `sql`, its texts as their UTF-8 bytes (None when there is no
    row). For JSON answers PostgreSQL renders, sent as they come: decoding megabytes into
    a str and encoding them back for the response cost tens of milliseconds (the
    merchants report)."""
    with _read_cursor() as cursor:
        cursor.cursor.adapters.register_loader("text", _Utf8Loader)
        _execute(cursor, sql, params)
        return cursor.fetchone()


def fetch_utf8(sql: str, params: dict | list) -> bytes | None:
    """The first column of `fetch_utf8_row`: a text, as its UTF-8 bytes."""
    row = fetch_utf8_row(sql, params)
    return None if row is None else row[0]


def own_connection_params(alias: str = "default") -> dict:
    """Django's connection parameters, for a psycopg connection opened outside Django
    (the same database, credentials and options; under tests, the test database)."""
    params = connections[alias].get_connection_params()
    # Django's cursor class suits its own connections only.
    params.pop("cursor_factory", None)
    return params


class CompiledQuery:
    """An ORM queryset compiled to SQL once, run many times with each call's own values.

    Building and compiling a queryset with window expressions and subqueries costs about
    a millisecond of CPU, as much as a small report's whole query. So the queryset is
    built once with stand-in values (`slots`: name → a value no real call passes) and
    compiled; each call then fills its own values into the stand-ins' places. The SQL
    text stays the same from call to call, which also lets a connection prepare it.

    Every other parameter the compiler made (statuses, time zones, zeros) is written into
    the SQL as a literal. A prepared statement's generic plan is made without its
    parameters' values: with `status = $3`, PostgreSQL could not tell that the partial
    indexes on delivered orders apply, and a one-day report ran twice as long.
    """

    def __init__(self, queryset, *, slots: dict[str, object]):
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        self._slots: list[_Slot] = []

        def slot_of(param) -> _Slot | None:
            name = next((n for n, v in slots.items() if _same_value(param, v)), None)
            if name is None:
                return None
            # Keep an int wrapper's type (Int4 for a window filter), so the parameter is
            # sent with the type the compiler chose.
            slot = _Slot(name, type(param) if isinstance(param, int) else None)
            self._slots.append(slot)
            return slot

        self.sql = literal_sql(sql, params, keep=slot_of)
        missing = set(slots) - {slot.name for slot in self._slots}
        if missing:
            raise ValueError(f"the compiled query never uses {sorted(missing)}")

    def named_sql(self) -> str:
        """The SQL with each value's place as `%(name)s`, to sit inside a statement that
        names its parameters."""
        slots = iter(self._slots)
        return _PLACEHOLDER.sub(
            lambda match: "%%" if match.group() == "%%" else f"%({next(slots).name})s", self.sql
        )

    def params(self, **values) -> list:
        return [
            slot.cast(values[slot.name]) if slot.cast else values[slot.name] for slot in self._slots
        ]


class CompiledCount:
    """How many rows a queryset holds, compiled once with the stand-ins `slots`
    (`CompiledQuery` of its primary keys, `matches`): `sql` counts them, at most up to a
    bound given after the rows' own values when `bounded`."""

    def __init__(self, queryset, *, slots: dict[str, object], bounded: bool = False):
        self.matches = CompiledQuery(queryset.order_by().values("pk"), slots=slots)
        self.sql = count_sql(self.matches.sql + (" LIMIT %s" if bounded else ""))

    def params(self, **values) -> list:
        return self.matches.params(**values)


class CompiledPage:
    """Pages of a `values_list` queryset, each read with the count of all its rows by one
    statement as `geomarket.api.pagination.queryset_page` reads them (the count an
    uncorrelated subquery over the rows' primary keys, run once), but compiled once
    (`CompiledQuery`, with the same `slots`): on a list of a few rows, building and
    compiling the queryset cost more CPU than the statement. The page's LIMIT and OFFSET
    are parameters, so that every page runs the same SQL text, which the connection
    prepares (`PreparedStatement`): planning a merchant's stock page took PostgreSQL
    several times its run.
    """

    def __init__(self, queryset, *, slots: dict[str, object]):
        matches_sql, count_params = queryset.order_by().values("pk").query.sql_with_params()
        count = RawSQL(  # noqa: S611 - a statement compiled by the ORM
            count_sql(matches_sql), count_params, output_field=BigIntegerField()
        )
        counting = queryset.annotate(matched_count=count).values_list(
            *queryset._fields, "matched_count"
        )
        self._page = CompiledQuery(counting, slots=slots)
        self._page_statement = PreparedStatement(f"{self._page.sql} LIMIT %s OFFSET %s")
        self._count = CompiledCount(queryset, slots=slots)

    def read(self, *, offset: int, limit: int, **values) -> CountedPage:
        """Rows `offset` to `offset + limit`, as tuples of the queryset's fields, and the
        count of all rows, for the slots' `values`."""
        return rows_with_count(
            self._page_statement.fetch_all([*self._page.params(**values), limit, offset]),
            offset=offset,
            split=lambda row: (row[:-1], row[-1]),
            count_alone=lambda: fetch_value(self._count.sql, self._count.params(**values)),
        )


class _Slot(NamedTuple):
    name: str
    cast: type | None


def _same_value(param, stand_in) -> bool:
    if isinstance(stand_in, int):
        return isinstance(param, int) and not isinstance(param, bool) and param == stand_in
    return type(param) is type(stand_in) and param == stand_in


_PLACEHOLDER = re.compile(r"%s|%%")


def literal_sql(sql: str, params, *, keep=lambda param: False) -> str:
    """`sql` (psycopg's `%s` style) with each of `params` written in as a literal,
    except those `keep` answers truthy for, whose placeholders stay."""
    remaining = iter(params)

    def substitute(match: re.Match) -> str:
        if match.group() == "%%":
            return "%%"
        param = next(remaining)
        if keep(param):
            return "%s"
        return Literal(param).as_string(None).replace("%", "%%")

    return _PLACEHOLDER.sub(substitute, sql)


class PreparedStatement:
    """A statement in psycopg's `%s` style whose values are bound on the server, so that
    the connection prepares it (`prepared_cursor`): PostgreSQL plans it once per
    connection instead of on every run. A compiled read of an order with its lines and
    history took 6.7 ms with its values written into its text, 1.2 ms prepared (p50 on
    the bench city, on a loaded machine): planning was most of it."""

    def __init__(self, sql: str):
        self.sql = sql

    def fetch_all(self, params: Sequence | dict) -> list[tuple]:
        with connections[read_alias()].prepared_cursor() as cursor:
            cursor.execute(self.sql, params)
            return cursor.fetchall()

    def fetch_dicts(self, params: Sequence | dict) -> list[dict]:
        """Rows as dicts keyed by column name, as `fetch_dicts` reads them."""
        with connections[read_alias()].prepared_cursor() as cursor:
            cursor.execute(self.sql, params)
            return _dict_rows(cursor)


class Lateral:
    """A subquery joined LATERAL to a queryset's table, which the ORM cannot express: run
    once per row of that table (its `OuterRef`s name that row), so each run can be an
    index probe with a `LIMIT`. `join` returns the queryset joined to it; `col` reads one
    of its columns there. INNER drops the rows for which it finds nothing, LOUTER keeps
    them with NULLs."""

    def __init__(self, queryset, *, name: str, join_type: str = INNER):
        self.queryset = queryset
        self.name = name
        self.join_type = join_type

    def join(self, queryset):
        queryset = queryset.all()
        query = queryset.query
        subquery = Subquery(self.queryset, output_field=Field()).resolve_expression(query)
        alias = query.join(
            _LateralJoin(query.get_initial_alias(), self.name, subquery, self.join_type)
        )
        if alias != self.name:
            raise ValueError(f"{self.name!r} already names a table of the query")
        return queryset

    def col(self, name: str) -> Col:
        return Col(self.name, self.queryset.model._meta.get_field(name))


class _LateralJoin(QJoin):
    """The join clause; QJoin's `on_clause` holds the resolved subquery, which is what a
    join compiles and relabels."""

    def __init__(self, parent_alias, table_alias, subquery, join_type, nullable=None):
        super().__init__(
            parent_alias, table_alias, table_alias, subquery, join_type=join_type, nullable=nullable
        )

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.on_clause)
        quoted = compiler.quote_name_unless_alias(self.table_alias)
        return f"{self.join_type} LATERAL {sql} {quoted} ON true", params

    def relabeled_clone(self, change_map):
        return type(self)(
            change_map.get(self.parent_alias, self.parent_alias),
            change_map.get(self.table_alias, self.table_alias),
            self.on_clause.relabeled_clone(change_map),
            self.join_type,
            self.nullable,
        )
