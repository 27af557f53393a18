"""Locks held without a transaction."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def session_lock(key: str) -> Iterator[None]:
    """Hold PostgreSQL's session-level advisory lock named `key`, waiting for it if another
    connection holds it.

    For work that must not run twice at once and must not keep a transaction open while
    it runs, such as talking to a mail server, which may take seconds. PostgreSQL releases
    the lock when the holder's connection ends, so a process that dies holding it keeps
    nobody waiting.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
