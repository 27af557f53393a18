"""Django's PostGIS backend, registering the geometry adapters once per connection.

Django's backend registers them in `get_new_connection`, which under connection pooling
runs on every checkout of a pooled connection: a few type lookups and a dozen adapter
registrations per request, about 6 % of a simple request's CPU. A pooled connection keeps
its adapters between checkouts, so registering them once is enough. It checks a
connection it lends without a round trip, and lends the most recently returned one
(`geomarket.db.pool`). And it gives the hottest writes cursors whose statements are
prepared (`prepared_cursor`).
"""

import weakref

from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISWrapper
from django.db.backends.postgresql.base import (
    TIMESTAMPTZ_OID,
    CursorDebugWrapper,
    ServerBindingCursor,
    register_tzloader,
)
from django.utils.asyncio import async_unsafe
from psycopg.errors import DataError
from psycopg.pq import Format
from psycopg_pool import ConnectionPool

from geomarket.db.pool import check_idle_connection, lend_most_recent


class DatabaseWrapper(PostGISWrapper):
    _registered = weakref.WeakSet()

    def register_geometry_adapters(self, pg_connection, clear_caches=False):
        # `clear_caches` comes after PostGIS was created in the database (tests): the
        # types are new, so everything is registered again.
        if not clear_caches and pg_connection in self._registered:
            return
        super().register_geometry_adapters(pg_connection, clear_caches)
        self._registered.add(pg_connection)

    @property
    def pool(self):
        pool = super().pool
        # Django gives the pool psycopg_pool's check, a round trip on every checkout; the
        # pool takes its check only when built, so it is swapped for the socket poll here.
        if pool is not None:
            if pool._check is ConnectionPool.check_connection:
                pool._check = check_idle_connection
            lend_most_recent(pool)
        return pool

    @async_unsafe
    def prepared_cursor(self):
        """A cursor, as `cursor()` gives, that binds its parameters on the server, so that
        the connection prepares its statements (the `prepare_threshold` option: on their
        second run with the project's settings, never when it is None).

        Django's own cursors bind parameters into the statement's text, so PostgreSQL
        parses and plans every statement anew: for an order's context read, planning is
        three times its execution. Only statements written for it run here; their
        parameters are sent with their Python types (an `int` as `smallint` to `bigint`
        by its size, a `str` as `unknown`), so a parameter whose type the statement does
        not fix by its context needs a cast."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = ServerBindingCursor(self.connection)
            # As `create_cursor` does: its time zone, when the connection's is another.
            loader = self.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != loader.timezone:
                register_tzloader(self.timezone, cursor)
        self.validate_thread_sharing()
        if self.queries_logged:
            return _PreparedDebugWrapper(cursor, self)
        return self.make_cursor(cursor)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs a prepared statement's run as Django logs any other: with its values in its
    text. psycopg keeps no text of a run of a prepared statement, where Django reads it."""

    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        if use_last_executed_query:
            try:
                sql = self.db.ops.compose_sql(sql, params)
            except DataError:
                sql = None
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)
