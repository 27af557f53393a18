"""Django's PostGIS backend, registering the geometry adapters once per connection.

Django's backend registers them in `get_new_connection`, which under connection pooling
runs on every checkout of a pooled connection: a few type lookups and a dozen adapter
registrations per request, about 6 % of a simple request's CPU. A pooled connection keeps
its adapters between checkouts, so registering them once is enough. And it checks a
connection it lends without a round trip (`geomarket.db.pool`).
"""

import weakref

from django.contrib.gis.db.backends.postgis.base import DatabaseWrapper as PostGISWrapper
from psycopg_pool import ConnectionPool

from geomarket.db.pool import check_idle_connection


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
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_idle_connection
        return pool
