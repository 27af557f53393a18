"""Connections to PostgreSQL itself, past a transaction pooler (DATABASE_DIRECT_URL).

A transaction pooler lends a client a server session for one transaction only, so what
lasts across transactions on one session is lost or seen by others: a LISTEN, a
session-level advisory lock. Those open a connection of their own here.
"""

from django.conf import settings

from geomarket.sql import own_connection_params


def direct_connection_params() -> dict:
    """`own_connection_params` (the same database: under tests, the test database), at
    DATABASE_DIRECT_URL's address and credentials."""
    direct = settings.DATABASE_DIRECT
    address = {
        "host": direct["HOST"],
        "port": direct["PORT"],
        "user": direct["USER"],
        "password": direct["PASSWORD"],
    }
    return {**own_connection_params(), **{key: value for key, value in address.items() if value}}
