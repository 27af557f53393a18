"""The project's PostGIS backend registers geometry adapters once per connection; the
tests' own empties tables quickly and completely."""

import select

import psycopg
import pytest
from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISWrapper
from django.contrib.gis.geos import Point
from django.db import connection, connections, transaction
from django.db import utils as django_db
from django.test.utils import CaptureQueriesContext

from geomarket.db.postgis.base import DatabaseWrapper
from tests.market import ORDERS, order_body


def test_a_connection_gets_its_geometry_adapters_once(db, monkeypatch):
    registrations = []
    register = PostGISWrapper.register_geometry_adapters

    def counted(self, pg_connection, clear_caches=False):
        registrations.append(clear_caches)
        return register(self, pg_connection, clear_caches)

    monkeypatch.setattr(PostGISWrapper, "register_geometry_adapters", counted)
    connection.ensure_connection()
    assert isinstance(connections["default"], DatabaseWrapper)
    pg_connection = connection.connection
    # As a pooled connection is checked out again and again.
    for _ in range(3):
        connection.register_geometry_adapters(pg_connection)
    assert registrations == []
    connection.register_geometry_adapters(pg_connection, clear_caches=True)
    assert registrations == [True]
    with connection.cursor() as cursor:
        point = connection.ops.Adapter(Point(13.4, 52.5, srid=4326))
        cursor.execute("SELECT ST_AsText(%s::geometry)", [point])
        assert cursor.fetchone()[0] == "POINT(13.4 52.5)"


def test_the_test_flush_empties_every_table_but_the_kept_ones(db, market):
    """The test backend's flush (tests/db/postgis): rows of every kind, an order's tally
    included, which its triggers add while the orders are deleted, are all gone, and what
    is left breaks no foreign key."""
    from django.core.management.color import no_style

    from tests.db.postgis.base import KEPT

    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert placed.status_code == 201, placed.content
    tables = connection.introspection.django_table_names(only_existing=True)
    # The tally first: the orders' deletion after it files rows there again.
    tables.sort(key=lambda table: table != "orders_orderstatustally")
    assert tables[0] == "orders_orderstatustally"
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - Django's names
            assert (cursor.fetchone()[0] > 0) == (table in KEPT), table


def test_a_pooled_connection_is_checked_by_a_poll_and_replaced_once_terminated(db, monkeypatch):
    """The pool lends a sound idle connection without a round trip, and one the server
    has ended is refused, so that the pool opens another."""
    from psycopg_pool import ConnectionPool

    from geomarket.db.direct import direct_connection_params
    from geomarket.db.pool import check_idle_connection

    # Ended by PostgreSQL itself: a pooler would hide the end of its server session.
    params = direct_connection_params()
    round_trips = []
    check_connection = ConnectionPool.check_connection
    monkeypatch.setattr(
        ConnectionPool,
        "check_connection",
        staticmethod(lambda conn: round_trips.append(conn) or check_connection(conn)),
    )
    with psycopg.connect(**params, autocommit=True) as idle:
        check_idle_connection(idle)
        assert round_trips == []
        with psycopg.connect(**params, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [idle.info.backend_pid])
        # The server's goodbye reaches the socket a moment later.
        for _ in range(100):
            if select.select([idle.fileno()], [], [], 0.05)[0]:
                break
        with pytest.raises(psycopg.OperationalError):
            check_idle_connection(idle)


def test_the_backend_gives_its_pools_the_polling_check():
    from geomarket.db.pool import check_idle_connection

    settings_dict = {
        **connections["default"].settings_dict,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {**connections["default"].settings_dict["OPTIONS"], "pool": {"min_size": 1}},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check")
    try:
        assert wrapper.pool._check is check_idle_connection
    finally:
        wrapper.close_pool()


def test_the_backend_pool_lends_the_most_recently_returned_connection(db):
    """After a burst has opened several connections, one client's requests keep to the
    warmest one instead of going round them all (psycopg_pool's own order)."""
    settings_dict = {
        **connections["default"].settings_dict,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **connections["default"].settings_dict["OPTIONS"],
            "pool": {"min_size": 3, "max_size": 3},
        },
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_order")
    try:
        pool = wrapper.pool
        pool.open(wait=True)
        burst = [pool.getconn() for _ in range(3)]
        for lent in burst:
            pool.putconn(lent)
        last_returned = burst[-1]
        for _ in range(3):
            lent = pool.getconn()
            assert lent is last_returned
            pool.putconn(lent)
        # The others are still there, lent when the warm one is busy.
        held = pool.getconn()
        others = {id(pool.getconn()), id(pool.getconn())}
        assert others == {id(conn) for conn in burst[:-1]}
        assert held is last_returned
    finally:
        wrapper.close_pool()


def _prepared_statements() -> list[str]:
    """The statements psycopg prepared on Django's connection (not SQL `PREPARE`s)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


PREPARED = "SELECT %(name)s::text || count(*) FROM accounts_user WHERE id = %(id)s"


def test_a_prepared_cursor_prepares_its_statements_on_their_second_run(db):
    for run, name in enumerate(["first", "second", "third"]):
        with connection.prepared_cursor() as cursor:
            cursor.execute(PREPARED, {"name": name, "id": -1})
            assert cursor.fetchone() == (f"{name}0",)
        prepared = [text for text in _prepared_statements() if "accounts_user" in text]
        assert len(prepared) == (1 if run else 0), (run, prepared)
    # Django's own cursors prepare nothing.
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM auth_group WHERE id = %s", [-1])
    assert not [text for text in _prepared_statements() if "auth_group" in text]


def test_a_prepared_statement_is_logged_with_its_values_and_its_errors_are_djangos(db):
    with CaptureQueriesContext(connection) as captured:
        for _ in range(2):
            with connection.prepared_cursor() as cursor:
                cursor.execute(PREPARED, {"name": "logged", "id": 7})
    assert [query["sql"] for query in captured.captured_queries] == [
        "SELECT 'logged'::text || count(*) FROM accounts_user WHERE id = 7"
    ] * 2
    with (
        pytest.raises(django_db.ProgrammingError),
        transaction.atomic(),
        connection.prepared_cursor() as cursor,
    ):
        cursor.execute("SELECT no_such_column FROM accounts_user")


def test_prepared_statements_can_be_turned_off(db, monkeypatch):
    """`ASYNC_DB_PREPARE_THRESHOLD=off` (a pooler that cannot keep them) gives Django's
    connections no `prepare_threshold`: a prepared cursor then prepares nothing."""
    from django.conf import settings

    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == (
        settings.ASYNC_DB_PREPARE_THRESHOLD
    )
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    for _ in range(3):
        with connection.prepared_cursor() as cursor:
            cursor.execute(PREPARED, {"name": "off", "id": -1})
            assert cursor.fetchone() == ("off0",)
    assert not [text for text in _prepared_statements() if "accounts_user" in text]


def test_placing_an_order_runs_prepared_statements(db, market):
    """The token lookup, the order's context read, its stock take and its record."""
    for _ in range(2):
        placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert placed.status_code == 201, placed.content
    prepared = _prepared_statements()
    for part in (
        "authtoken_token",
        "merchants_deliveryzone",
        "UPDATE inventory_inventory",
        "INSERT INTO orders_order",
    ):
        assert [text for text in prepared if part in text], part


def test_reading_orders_runs_prepared_statements(db, market):
    """An order's detail, a page of orders and a page of its incidents: PostgreSQL plans
    each compiled read once per connection."""
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert placed.status_code == 201, placed.content
    order = f"{ORDERS}{placed.json()['id']}/"
    for _ in range(2):
        for path in (order, ORDERS, f"{order}incidents/"):
            assert market["client"].get(path).status_code == 200, path
    prepared = _prepared_statements()
    detail = [text for text in prepared if "orders_orderstatuschange" in text]
    incidents = [text for text in prepared if "orders_orderincident" in text]
    pages = [text for text in prepared if "orders_orderitem" in text and text not in detail]
    assert (len(detail), len(incidents), len(pages)) == (1, 1, 1), prepared


def test_the_test_flush_empties_a_merchant_with_categories_whatever_the_tables_order(db):
    """Django lists the tables in a set's order, which differs from process to process.
    Removing a merchant's categories renders its `shown_json` again (a trigger): with its
    owner and address already gone, that rendered NULL, and the flush failed."""
    from django.core.management.color import no_style

    from tests import factories

    factories.merchant(categories=[factories.category()])
    tables = connection.introspection.django_table_names(only_existing=True)
    read_by_the_render = ("accounts_user", "merchants_address", "catalog_productcategory")
    tables.sort(key=lambda table: (table not in read_by_the_render, table == "merchants_merchant"))
    assert tables[-1] == "merchants_merchant"
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in ("merchants_merchant", "merchants_merchant_categories", "accounts_user"):
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - Django's names
            assert cursor.fetchone()[0] == 0, table
