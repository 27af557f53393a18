"""The streaming replica of `make replica`, as replica_0 under the test database's name.

Each test holds a file lock for its whole run: one holds replay back or routes through a
proxy it stops, and the replica is shared by every test worker."""

import fcntl
import socket
import time

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connections

from geomarket.db import replicas
from tests.redis_server import SilencingProxy

REPLICA = "replica_0"
LOCK_PATH = django_settings.BASE_DIR / ".local" / "replica-tests.lock"


def replica_sql(sql: str):
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def replayed(timeout: float = 10.0) -> None:
    """Wait until the replica has replayed every write committed so far."""
    target = replicas.primary_lsn()
    deadline = time.monotonic() + timeout
    while replicas.monitor.refresh(REPLICA).replay_lsn < target:
        if time.monotonic() > deadline:
            raise AssertionError("the replica did not catch up")
        time.sleep(0.02)


def lagging_by(seconds: float, timeout: float = 10.0) -> None:
    """Wait until the replica's reading says it lags more than `seconds`."""
    deadline = time.monotonic() + timeout
    while replicas.monitor.refresh(REPLICA).lag <= seconds:
        if time.monotonic() > deadline:
            raise AssertionError("the replica did not fall behind")
        time.sleep(0.02)


def replay_paused() -> None:
    """Hold replay back: the writes committed from now on stay off the replica until
    `replay_resumed`."""
    replica_sql("SELECT pg_wal_replay_pause()")


def replay_resumed() -> None:
    replica_sql("SELECT pg_wal_replay_resume()")


def apply_delayed(seconds: int) -> None:
    """Delay the replica as an operator would (`recovery_min_apply_delay`): each commit
    replayed only `seconds` after it was made on the primary; 0 lifts it."""
    with connections[REPLICA].cursor() as cursor:
        if seconds:
            cursor.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds)}s'")
        else:
            cursor.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
    replica_sql("SELECT pg_reload_conf()")


@pytest.fixture
def replica(settings):
    """Marked reads go to replica_0, read afresh on each read; the test runs alone on the
    replica, which is replaying when it starts and when it ends."""
    LOCK_PATH.parent.mkdir(exist_ok=True)
    with LOCK_PATH.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        settings.REPLICA_ALIASES = [REPLICA]
        settings.REPLICA_CHECK_SECONDS = 0
        replicas.monitor.forget()
        try:
            replay_resumed()
        except OperationalError as error:
            pytest.fail(
                f"No replica answers as {REPLICA}: {error}. `make test` starts one beside"
                " the local PostgreSQL; with DATABASE_URL set it starts none, and"
                " DATABASE_REPLICA_URLS must name a streaming replica of that server.",
                pytrace=False,
            )
        try:
            yield REPLICA
        finally:
            apply_delayed(0)
            replay_resumed()
            replicas.monitor.forget()


class StoppableProxy(SilencingProxy):
    """A TCP proxy to the replica that can be stopped as a server stops: its connections
    are closed, and new ones refused."""

    def stop(self):
        # A listener closed while a thread waits in accept() would go on accepting.
        self.listener.shutdown(socket.SHUT_RDWR)
        self.close()
