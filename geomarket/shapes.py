"""Response shapes, each declared once.

A `Shape` names the fields of a JSON object the API answers and the `Kind` of each. From
that one declaration come:
- `serializer()`: the DRF serializer, for the OpenAPI schema (and CSV columns);
- `render(row)`: the object built in Python from a row of values, as DRF renders it;
- `json_sql(...)`: SQL that renders the same JSON text in PostgreSQL (byte for byte, but
  that a distance keeps its two places: 12.50 for 12.5), for
  the answers the database renders (products/nearby, the reports the event loop serves)
  and for JSON stored in a row by a trigger (`stored_json_trigger_sql`).

A kind holds the two renderings of one type of value side by side: what DRF makes of it
in Python, and the SQL that makes the same text. Tests render every kind both ways.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from django.db.models import F, FloatField, Func
from rest_framework import serializers

from geomarket.api.fields import GeoJSONPointField, format_datetime

CENT = Decimal("0.01")

# DRF's JSON renderer escapes U+2028 and U+2029, which JavaScript cannot take raw;
# to_json escapes everything else exactly as Python's encoder does.
_TEXT_SQL = (
    "replace(replace(COALESCE(to_json({value})::text, 'null'),"
    " U&'\\2028', '\\u2028'), U&'\\2029', '\\u2029')"
)


def money(value: Decimal | None) -> str:
    return "0.00" if value is None else str(value.quantize(CENT, ROUND_HALF_UP))


@dataclass(frozen=True)
class Kind:
    """One type of value: its serializer field, its rendering in Python, and the SQL
    (a template over `{value}`) giving its JSON text, never NULL; without `sql`, shapes
    holding it are rendered in Python only."""

    name: str
    field: Callable[[], serializers.Field]
    python: Callable[[Any], Any]
    sql: str | None = None


def _same(value):
    return value


INTEGER = Kind("integer", serializers.IntegerField, _same, "COALESCE({value}::text, 'null')")
TEXT = Kind("text", serializers.CharField, _same, _TEXT_SQL)
BOOLEAN = Kind(
    "boolean",
    serializers.BooleanField,
    _same,
    "CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' ELSE 'null' END",
)
# Money is a string with two places ("12.50"); a missing sum is "0.00". Sums and totals
# may run past a price's digits, so the answer's schema bounds none.
MONEY = Kind(
    "money",
    lambda **options: serializers.DecimalField(
        max_digits=None, decimal_places=2, coerce_to_string=True, **options
    ),
    money,
    "('\"' || COALESCE(round({value}, 2)::text, '0.00') || '\"')",
)
DATE = Kind(
    "date",
    serializers.DateField,
    lambda value: value.isoformat(),
    "('\"' || to_char({value}, 'YYYY-MM-DD') || '\"')",
)
# As DRF renders a datetime: ISO 8601 in UTC with "Z", microseconds only when any.
DATETIME = Kind(
    "datetime",
    serializers.DateTimeField,
    format_datetime,
    "('\"' || to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN mod(date_part('microseconds', {value})::bigint, 1000000) = 0 THEN ''"
    " ELSE to_char({value} AT TIME ZONE 'UTC', '.US') END || 'Z\"')",
)


def choice(choices) -> Kind:
    """Text that is one of `choices` (a model's `TextChoices`), named as such in the schema."""
    return Kind(
        "choice",
        lambda **options: serializers.ChoiceField(choices=choices.choices, **options),
        _same,
        _TEXT_SQL,
    )


# A float as DRF renders it (52.0, not 52): PostgreSQL's text of a float8 drops the ".0",
# so this kind is rendered in Python only.
FLOAT = Kind("float", serializers.FloatField, float)


def _centimetres(value: float) -> float:
    # As PostgreSQL rounds a float8 cast to numeric: its 15 significant digits, half away
    # from zero. The SQL's text keeps two places (12.50): the same number in JSON.
    return float(Decimal(f"{value:.15g}").quantize(CENT, ROUND_HALF_UP))


# A distance in metres, to the centimetre.
METRES = Kind("metres", serializers.FloatField, _centimetres, "round({value}::numeric, 2)::text")
# A device's measurement kept as a `real` (a speed, a heading, an accuracy): its six
# significant digits, as the column is read through numeric (12.3, not the float4's
# expansion). The SQL's text is numeric's (90, not 90.0): the same number in JSON.
MEASURE = Kind(
    "measure",
    lambda: serializers.FloatField(allow_null=True),
    lambda value: None if value is None else float(value),
    "COALESCE({value}::numeric::text, 'null')",
)
# A geography point as GeoJSON; float8's text is the shortest that reads back the same,
# as Python's repr.
POINT = Kind(
    "point",
    GeoJSONPointField,
    lambda value: {"type": "Point", "coordinates": [value.x, value.y]},
    '(\'{{"type":"Point","coordinates":[\' || ST_X({value}::geometry) || \',\''
    " || ST_Y({value}::geometry) || ']}}')",
)


# A coordinate's text as Python's float repr gives it: float8's text is the same shortest
# digits, exponents included, for every value below 1e15 in size (all coordinates), but
# drops an integral value's ".0" (13 for 13.0, -0 for -0.0).
_COORDINATE_SQL = "CASE WHEN {c} = trunc({c}) THEN {c}::text || '.0' ELSE {c}::text END"
# A geography point as DRF renders it (`GeoJSONPointField`), byte for byte: for the answers
# DRF rendered, where `POINT`'s text of an integral coordinate would lose its ".0".
GEOJSON_POINT = Kind(
    "point",
    GeoJSONPointField,
    POINT.python,
    '(\'{{"type":"Point","coordinates":[\' || '
    + _COORDINATE_SQL.format(c="ST_X({value}::geometry)")
    + " || ',' || "
    + _COORDINATE_SQL.format(c="ST_Y({value}::geometry)")
    + " || ']}}')",
)


class Coordinates(NamedTuple):
    """A point read as its two coordinates (`coordinates`), which `POINT` renders as it
    renders a parsed geometry: a page of points parsed into GEOS objects costs more CPU
    than reading the page."""

    x: float
    y: float


def coordinates(field: str) -> tuple[Func, Func]:
    """ORM expressions reading the longitude and latitude of the geography point `field`."""
    return tuple(
        Func(
            F(field),
            function=function,
            template="%(function)s(%(expressions)s::geometry)",
            output_field=FloatField(),
        )
        for function in ("ST_X", "ST_Y")
    )


def point_of(x: float | None, y: float | None) -> Coordinates | None:
    return None if x is None else Coordinates(x, y)


@dataclass(frozen=True)
class Field:
    """A field of a shape: its `kind`, or a nested `shape`, or a `stored` shape whose JSON
    text a column already holds, or `many` objects of a shape (a list of rows in Python; in
    SQL a column holding their array's JSON text, such as `json_array_sql` makes). `source`
    is the row's column (or SQL expression) it is read from; by default its name."""

    name: str
    kind: Kind | None = None
    source: str | None = None
    shape: "Shape | None" = None
    stored: bool = False
    # The schema's description of the field.
    help_text: str | None = None
    # The value may be missing: null in JSON, whatever its kind renders.
    null: bool = False
    many: bool = False

    @property
    def field_options(self) -> dict:
        """What the serializer field is made with beyond its kind's defaults."""
        options = {"help_text": self.help_text} if self.help_text else {}
        if self.many:
            options["many"] = True
        return {**options, "allow_null": True} if self.null else options

    @property
    def column(self) -> str:
        return self.source or self.name

    def render(self, value):
        """The field's value as DRF renders it (a nested shape's value is its own row)."""
        if self.many:
            return self.shape.render_rows(value)
        if self.shape is not None:
            return self.shape.render(value)
        if value is None and self.null:
            return None
        return self.kind.python(value)


@dataclass(frozen=True)
class Shape:
    name: str
    fields: tuple[Field, ...]
    # Shapes' serializers are built once: drf-spectacular names components by class.
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.fields]

    @property
    def columns(self) -> list[str]:
        """The columns a row of this shape is read from, in order."""
        return [item.column for item in self.fields]

    def serializer(self) -> type[serializers.Serializer]:
        """The DRF serializer of this shape, for the schema, named `<name>Serializer`."""
        if "serializer" not in self._cache:
            declared = {
                item.name: (
                    item.shape.serializer()(**item.field_options)
                    if item.shape is not None
                    else item.kind.field(**item.field_options)
                )
                for item in self.fields
            }
            self._cache["serializer"] = type(
                f"{self.name}Serializer", (serializers.Serializer,), declared
            )
        return self._cache["serializer"]

    def render(self, row: Sequence) -> dict:
        """The object for `row`, a sequence of the values of this shape's fields in order
        (a nested shape's value is its own row)."""
        return {item.name: item.render(value) for item, value in zip(self.fields, row, strict=True)}

    def render_rows(self, rows: Sequence[Sequence]) -> list[dict]:
        return [self.render(row) for row in rows]

    def only(self, name: str, *names: str) -> "Shape":
        """The shape `name` of these of this shape's fields, in this shape's order."""
        unknown = set(names) - set(self.names)
        if unknown:
            raise ValueError(f"{self.name} has no field {sorted(unknown)}")
        return Shape(name, tuple(item for item in self.fields if item.name in names))

    def pick(self, answer: dict) -> dict:
        """This shape's part of `answer`, an answer of a shape that has every one of its
        fields (the one `only` was called on)."""
        return {name: answer[name] for name in self.names}

    def json_sql(self, *, alias: str, placeholder: str = "%%s", opening: str = "{") -> str:
        """SQL rendering one object of this shape as JSON text from the columns of the row
        `alias`: one format() call, which PostgreSQL runs faster than a chain of `||`.

        `placeholder` is format()'s slot as the statement is sent: doubled for psycopg
        when the statement carries parameters, single when it does not. `opening` comes
        before the first field: "," renders the fields to go on with an object already
        opened (by stored JSON text)."""
        template, values = self._template(alias=alias, placeholder=placeholder)
        return f"format('{opening}{template[1:]}', {', '.join(values)})"

    def _template(self, *, alias: str, placeholder: str) -> tuple[str, list[str]]:
        pieces: list[str] = []
        values: list[str] = []
        for item in self.fields:
            holds_json = item.stored or item.many
            if item.shape is not None and not holds_json:
                # A nested object's fields are read from the same row.
                nested, nested_values = item.shape._template(alias=alias, placeholder=placeholder)
                pieces.append(f'"{item.name}":{nested}')
                values.extend(nested_values)
                continue
            pieces.append(f'"{item.name}":{placeholder}')
            column = f"{alias}.{item.column}"
            if not holds_json and item.kind.sql is None:
                raise TypeError(f"{self.name}.{item.name}: a {item.kind.name} has no SQL rendering")
            rendered = column if holds_json else item.kind.sql.format(value=column)
            if item.null:
                rendered = f"CASE WHEN {column} IS NULL THEN 'null' ELSE {rendered} END"
            values.append(rendered)
        return "{" + ",".join(pieces) + "}", values


def json_array_sql(
    shape: Shape,
    rows_sql: str,
    *,
    order_by: Sequence[str],
    before: str = "[",
    after: str = "]",
    placeholder: str = "%%s",
    also: Sequence[str] = (),
) -> str:
    """SQL answering the rows of `rows_sql` as one JSON text: the objects of `shape`, one
    per row in `order_by` order (column names of the rows), between `before` and `after`;
    then the aggregates `also` over the same rows `r`, as further columns."""
    ordering = ", ".join(f"r.{name}" for name in order_by)
    rendered = shape.json_sql(alias="r", placeholder=placeholder)
    aggregates = "".join(f", {aggregate}" for aggregate in also)
    # Only declared shapes, column names and compiled statements go in.
    return (
        f"SELECT '{before}' || COALESCE(string_agg({rendered}, ',' ORDER BY {ordering}), '')"  # noqa: S608
        f" || '{after}'{aggregates} FROM ({rows_sql}) r"
    )


def stored_json_trigger_sql(
    shape: Shape, *, table: str, column: str, row_sql: str | None = None, unclosed: bool = False
) -> tuple[str, str, str]:
    """A trigger function keeping `column` of `table` equal to `shape` rendered from the
    row: its name, its body (as pg_proc.prosrc holds it) and the `CREATE OR REPLACE`
    statement installing it. `row_sql` selects the shape's columns for the row `NEW` when
    they are not all its own (a joined address, say); `unclosed` leaves the object open,
    for answers that go on with fields of their own."""
    function = f"{table}_{column}_update"
    rendered = shape.json_sql(alias="NEW" if row_sql is None else "r", placeholder="%s")
    if unclosed:
        rendered = f"left({rendered}, -1)"
    if row_sql is not None:
        rendered = f"(SELECT {rendered} FROM (\n        {row_sql}) r)"  # noqa: S608
    body = f"\nBEGIN\n    NEW.{column} := {rendered};\n    RETURN NEW;\nEND;\n"
    create = (
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $${body}$$ LANGUAGE plpgsql"
    )
    return function, body, create


def installed_function_body(cursor, function: str) -> str | None:
    """The body of the database's function named `function` (None when it has none), to
    compare with the one the code gives."""
    cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function])
    row = cursor.fetchone()
    return None if row is None else row[0]
