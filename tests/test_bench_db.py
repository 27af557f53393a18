"""The bench database made ready: a freshly seeded bench city is vacuumed before the first
run measures anything, instead of by autovacuum during it."""

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from bench.common.db import settle
from geomarket.db.direct import direct_connection_params

pytestmark = pytest.mark.django_db


# What of Django's connection parameters a connection string holds.
_CONNINFO = ("dbname", "host", "port", "user", "password", "options", "sslmode")


def _table_state(connection, table: str) -> tuple[int, int, float]:
    return connection.execute(
        "SELECT relpages, relallvisible, reltuples FROM pg_class WHERE oid = %s::regclass",
        [table],
    ).fetchone()


def test_settle_vacuums_and_analyzes_what_was_just_inserted():
    params = direct_connection_params()
    with psycopg.connect(**params, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_settle_probe")
        connection.execute(
            "CREATE TABLE bench_settle_probe AS"
            " SELECT n, md5(n::text) AS label FROM generate_series(1, 20000) n"
        )
        try:
            pages, visible, tuples = _table_state(connection, "bench_settle_probe")
            assert (visible, tuples) == (0, -1)

            settle(make_conninfo(**{k: v for k, v in params.items() if k in _CONNINFO}))

            pages, visible, tuples = _table_state(connection, "bench_settle_probe")
            assert pages > 0
            # Every page marked all-visible: vacuumed, not only analyzed.
            assert visible == pages
            assert tuples == 20000
        finally:
            connection.execute("DROP TABLE bench_settle_probe")
