"""PostgreSQL's advisory locks, named by text: held by a session without a transaction,
or by a transaction. A name is hashed to the lock's key the one way (`_KEY_SQL`), so it
names one lock whichever form takes it."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from geomarket.db.direct import direct_connection_params

# The key of the lock named by the statement's parameter `{name}`.
_KEY_SQL = "hashtextextended({name}, 0)"


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
        holder.execute(f"SELECT pg_advisory_lock({_KEY_SQL.format(name='%s')})", [key])
        yield


def transaction_lock_sql(*, name: str, shared: bool = False) -> str:
    """The statement that takes the transaction-level advisory lock named by its parameter
    `%(name)s`, waiting for it: shared, as many transactions as take it so; exclusive, one
    alone. Held until the transaction ends (a transaction pooler lends its session that
    long), or a savepoint set before it is rolled back to.

    For a caller that sends it ahead of the statement it guards in one round trip. In
    READ COMMITTED a statement reads what was committed when it started: what it reads
    must be read by a statement after this one, not by the one that waits for the lock,
    or it misses what the holder it waited for committed."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    return f"SELECT {function}({_KEY_SQL.format(name=f'%({name})s')})"


def transaction_lock(key: str, *, shared: bool = False) -> None:
    """Take the transaction-level advisory lock named `key` (`transaction_lock_sql`) in
    the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(transaction_lock_sql(name="key", shared=shared), {"key": key})
