"""Locks held without a transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geomarket.db.direct import direct_connection_params


@contextmanager
def session_lock(key: str) -> Iterator[None]:
    """Hold PostgreSQL's session-level advisory lock named `key`, waiting for it if another
    connection holds it.

    For work that must not run twice at once and must not keep a transaction open while
    it runs, such as talking to a mail server, which may take seconds. The lock is held
    by a connection of its own to PostgreSQL itself (`geomarket.db.direct`): a session
    lock taken through a transaction pooler would stay on whichever server session ran
    that statement, lent to other clients next, and its unlock could run on another.
    PostgreSQL releases the lock when its connection ends, so a process that dies holding
    it keeps nobody waiting.
    """
    with psycopg.connect(**direct_connection_params(), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        yield
