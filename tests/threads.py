"""Threads for tests that race real database connections.

An error raised in a thread ends only that thread; Python prints it and the test goes on.
Every threaded test runs its work through `Worker` or `run_in_threads`, which keep what
each thread raised and raise it again in the test, so a race in which every thread failed
can never pass as a race in which nothing went wrong.
"""

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db import connections

from geomarket.sql import own_connection_params

TIMEOUT_SECONDS = 120.0


class Worker(threading.Thread):
    """Runs `work` on a database connection of its own, closed when it ends (so the test
    database can be dropped), and keeps its result or its error for `outcome()`."""

    def __init__(self, work: Callable[[], Any]):
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # handed to the test by outcome()
            self.error = exc
        finally:
            connections.close_all()

    def outcome(self, timeout: float = TIMEOUT_SECONDS) -> Any:
        """Wait for the thread; raise what it raised, or return what it returned."""
        self.join(timeout)
        assert not self.is_alive(), f"{self.work!r} was still running after {timeout} s"
        if self.error is not None:
            raise self.error
        return self.result


def run_in_threads(*calls: Callable[[], Any], timeout: float = TIMEOUT_SECONDS) -> list[Any]:
    """Run each call in a thread of its own, all released at once, and return their
    results in order. If any raised, every error is raised together (an exception group),
    after all threads have ended."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            barrier.wait(timeout)
            return call()

        return run

    workers = [Worker(released(call)) for call in calls]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    stuck = [worker.work for worker in workers if worker.is_alive()]
    assert not stuck, f"{len(stuck)} of {len(workers)} threads still running after {timeout} s"
    errors = [worker.error for worker in workers if worker.error is not None]
    if errors:
        raise BaseExceptionGroup(f"{len(errors)} of {len(workers)} threads failed", errors)
    return [worker.result for worker in workers]


def behind_an_uncommitted_write(sql: str, params: Sequence[Any], request: Callable[[], Any]) -> Any:
    """What `request` returns when another session has run `sql` (a row `request` will
    collide with on a unique index) and not committed it yet: `request` runs in a thread,
    its check does not see the row, its write waits on the index, and the session commits
    once PostgreSQL shows it blocking the write. A race of two writes made certain."""
    connection_params = own_connection_params()
    with (
        psycopg.connect(**connection_params) as winner,
        psycopg.connect(**connection_params, autocommit=True) as observer,
    ):
        winner.execute(sql, params)
        # Asked of the server: through a pooler, the client's pid is not the session's.
        winner_pid = winner.execute("SELECT pg_backend_pid()").fetchone()[0]
        loser = Worker(request)
        loser.start()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not observer.execute(
            "SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [winner_pid]
        ).fetchone():
            assert loser.is_alive(), loser.outcome()
            assert time.monotonic() < deadline, "the write never waited on the index"
            time.sleep(0.01)
        winner.commit()
    return loser.outcome()
