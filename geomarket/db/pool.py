"""The connection pool's check of a connection it is about to lend."""

import select

import psycopg
from psycopg_pool import ConnectionPool


def check_idle_connection(connection: psycopg.Connection) -> None:
    """Raise if the idle `connection` is broken, without a round trip when it is sound.

    psycopg_pool's own check sends an empty query on every checkout, about a tenth of a
    millisecond of waiting per request on a local server and more across a network. An
    idle connection has nothing to read: the server writes to it only to end it (a
    restart, `pg_terminate_backend`, an idle timeout), and a closed socket reads as the
    end of the stream. So the socket is polled, which takes microseconds, and the query is
    sent only when there is something to read, where it raises and the pool opens another
    connection instead.
    """
    if connection.closed:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(connection)
