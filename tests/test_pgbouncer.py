"""The app through PgBouncer in transaction mode (`scripts/services.sh start` with
PGBOUNCER=1, which `make test` runs): server-side prepared statements, the outbox relay's
LISTEN, advisory locks and the event-loop lane's pools.

Each test sends Django's connections, and those opened with their parameters (the lane's
pools), through that PgBouncer whatever the run's settings, and counts the transactions
PgBouncer served for the test database, so none can pass by reaching PostgreSQL directly.
"""

import threading
import time

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from geomarket.lane import async_db
from geomarket.locks import session_lock
from geomarket.sql import own_connection_params
from tests import factories
from tests.orders.test_outbox import (
    test_the_relay_publishes_as_soon_as_the_order_commits as relay_publishes_on_commit,
)
from tests.search.served import served
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

POOLER = dj_database_url.parse(settings.DEFAULT_PGBOUNCER_URL)
NEARBY = "/api/v1/products/nearby/"


def pooler_admin() -> psycopg.Connection:
    """PgBouncer's console (the app role is one of its stats and admin users)."""
    return psycopg.connect(
        host=POOLER["HOST"],
        port=POOLER["PORT"],
        user=POOLER["USER"],
        password=POOLER["PASSWORD"],
        dbname="pgbouncer",
        autocommit=True,
    )


def pooler_stats() -> dict:
    """PgBouncer's totals for the test database (`SHOW STATS`)."""
    with pooler_admin() as admin:
        cursor = admin.execute("SHOW STATS")
        columns = [column.name for column in cursor.description]
        for row in cursor:
            stats = dict(zip(columns, row, strict=True))
            if stats["database"] == connection.settings_dict["NAME"]:
                return stats
    return {"total_xact_count": 0, "total_client_parse_count": 0}


def pooled_transactions() -> int:
    """Transactions PgBouncer has served on the test database."""
    return pooler_stats()["total_xact_count"]


@pytest.fixture
def through_pgbouncer():
    """Django's connections go through PgBouncer for the test, without the startup option
    it refuses (jit: PgBouncer's server connections have it off); `settings.DATABASE_DIRECT`
    still reaches PostgreSQL itself. Yields the transactions PgBouncer served so far."""
    shared = connection.settings_dict  # every thread's connection is made from this dict
    saved = {key: shared[key] for key in ("HOST", "PORT", "OPTIONS")}
    connections.close_all()
    shared.update(HOST=POOLER["HOST"], PORT=POOLER["PORT"])
    shared["OPTIONS"] = {key: value for key, value in saved["OPTIONS"].items() if key != "options"}
    try:
        yield pooled_transactions()
    finally:
        connections.close_all()
        shared.update(saved)


def test_prepared_statements_follow_the_client_to_other_server_connections(through_pgbouncer):
    """Django's prepared cursor prepares on a statement's second run; PgBouncer prepares
    it again on whichever server connection a later transaction gets."""
    statement = "SELECT pg_backend_pid() + 0 * %s::int"

    def run(value: int) -> tuple[int, int]:
        """The server session a run of `statement` got, and how many statements
        PgBouncer prepared there under that text."""
        with transaction.atomic(), connection.prepared_cursor() as cursor:
            cursor.execute(statement, [value])
            (pid,) = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE name LIKE 'PGBOUNCER\\_%%' AND statement = %s",
                [statement.replace("%s", "$1")],
            )
            return pid, cursor.fetchone()[0]

    run(1)
    first_pid, prepared = run(2)
    assert prepared == 1
    # Other clients take that server connection, in transactions kept open, so that the
    # next run gets another one.
    holders = []
    try:
        while True:
            holder = psycopg.connect(**own_connection_params())
            holders.append(holder)
            if holder.execute("SELECT pg_backend_pid()").fetchone()[0] == first_pid:
                break
            assert len(holders) < 30, "no client got the first run's server connection"
        for value in (3, 4):
            pid, prepared = run(value)
            assert pid != first_pid
            assert prepared == 1
    finally:
        for holder in holders:
            holder.close()
    assert pooled_transactions() > through_pgbouncer


def test_the_relay_listens_past_pgbouncer(through_pgbouncer, market, monkeypatch):
    """An order placed through PgBouncer wakes the relay, whose LISTEN is on a connection
    of its own to PostgreSQL: through the pooler it would be left on a server connection
    lent to others, and the relay would wait for its sweep."""
    relay_publishes_on_commit(market, monkeypatch)
    assert pooled_transactions() > through_pgbouncer


def test_session_locks_exclude_each_other_through_pgbouncer(through_pgbouncer):
    """Two holders of one session lock, each with the app's connection going through
    PgBouncer, never hold it at once."""
    held = threading.Lock()
    overlaps = []

    def hold() -> None:
        with session_lock("tests.pgbouncer"):
            if not held.acquire(blocking=False):
                overlaps.append(True)
                return
            try:
                # The app's own statements while holding the lock, through the pooler.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                time.sleep(0.3)
            finally:
                held.release()

    run_in_threads(hold, hold, hold)
    assert overlaps == []
    assert pooled_transactions() > through_pgbouncer


@pytest.fixture
def pooled_shop(through_pgbouncer):
    lat, lng = factories.BERLIN
    shop = factories.merchant(name="Pooled Shop", lat=lat + 0.001, lng=lng)
    factories.zone(merchant=shop)
    for title in ("Pooled Bread", "Pooled Milk"):
        factories.stock(product=factories.product(merchant=shop, title=title))
    return {"lat": lat, "lng": lng}


@pytest.mark.usefixtures("async_pool_closed")
async def test_the_lanes_pools_answer_nearby_through_pgbouncer(
    through_pgbouncer, pooled_shop, django_entries
):
    async with served() as client:
        await client.get(NEARBY, params={"lat": 0, "lng": 0})
        assert len(django_entries) == 1
        parsed = pooler_stats()["total_client_parse_count"]
        # The route's statement runs three times (three answers, none from the front
        # cache): prepared on its second run.
        answers = [
            await client.get(NEARBY, params={**pooled_shop, "limit": limit}) for limit in (2, 3, 4)
        ]
        # PgBouncer counts a client's named prepared statements as it prepares them.
        assert pooler_stats()["total_client_parse_count"] > parsed
        ports = {pooled.info.port for pooled in async_db.pools.get().idle}
    assert len(django_entries) == 1
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    for answer in answers:
        titles = {row["product"]["title"] for row in answer.json()["results"]}
        assert titles == {"Pooled Bread", "Pooled Milk"}
    assert ports == {POOLER["PORT"]}
    assert pooled_transactions() > through_pgbouncer
