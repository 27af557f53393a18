"""Raw SQL for the hot reads whose joins the ORM cannot express (LATERAL, KNN walks)."""

from django.db import connection, connections


def fetch_dicts(sql: str, params: dict) -> list[dict]:
    """Rows of `sql` as dicts keyed by column name."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def point_ewkt(*, lat: float, lng: float) -> str:
    """A WGS84 point literal for `%(point)s::geography` parameters."""
    return f"SRID=4326;POINT({lng!r} {lat!r})"


def fetch_value(sql: str, params: dict):
    """The first column of the first row of `sql`."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def own_connection_params() -> dict:
    """Django's connection parameters, for a psycopg connection opened outside Django
    (the same database, credentials and options; under tests, the test database)."""
    params = connections["default"].get_connection_params()
    # Django's cursor class suits its own connections only.
    params.pop("cursor_factory", None)
    return params
