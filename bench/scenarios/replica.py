"""Read replicas: the same reads at 8 clients against the server on the primary alone and
a server whose marked reads are split across the primary and the streaming replica
(`DATABASE_REPLICA_URLS`), measured in turns (`interleaved`): the throughput of each,
where the split server's reads ran (transactions each database committed meanwhile, as
PostgreSQL's statistics count them, flushed about once a second), and the replica's lag
read every 0.2 s.

The reads are ones a replica may serve and no cache answers: searches for common words
with a price bound no product reaches, and products/nearby with open_now (never cached)
at new points. Both servers have the same settings but the replica's URL, and on one
machine they share its cores with both databases: the figures say what a replica costs
and gives here, not what a second machine would add.

The replica is started through scripts/services.sh (`REPLICA=1`, made once by a base
backup of the primary, bench databases included); with an external DATABASE_URL, give
its replica as BENCH_REPLICA_URL, or the scenario is skipped.

Alone, against `BENCH_DATABASE_URL` (created and seeded when missing):

    .venv/bin/python -m bench.scenarios.replica   (BENCH_REPLICA_SECONDS a slice, 3 s)
"""

import os
import subprocess
import threading
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg

from bench.common import ROOT, processes
from bench.common.load import http_scenario, interleaved
from bench.common.report import percentile, ratio
from bench.scenarios.search import city_points, common_title_words, uncached_search_paths
from geomarket.env import local_port

CLIENTS = 8
ROUNDS = 4
SLICE_SECONDS = float(os.environ.get("BENCH_REPLICA_SECONDS", "3"))
LAG_INTERVAL_SECONDS = 0.2
COMMITTED_SQL = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


def replica_url(dsn: str, log) -> str | None:
    """The bench database on the replica, started here when it is the local one."""
    if os.environ.get("BENCH_REPLICA_URL"):
        return os.environ["BENCH_REPLICA_URL"]
    if os.environ.get("DATABASE_URL"):
        return None
    started = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), "start"],
        cwd=ROOT,
        env={**os.environ, "REPLICA": "1"},
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if started.returncode != 0:
        log("  the local replica did not start (scripts/services.sh)")
        return None
    port = local_port("REPLICA_PORT")
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}"))


def caught_up(primary_dsn: str, replica_dsn: str, *, timeout: float = 600) -> None:
    """Wait until the replica has replayed what the primary had written when called (a
    bench database seeded just now)."""
    from geomarket.db.replicas import PRIMARY_LSN_SQL, READING_SQL

    with psycopg.connect(primary_dsn, autocommit=True) as primary:
        target = primary.execute(PRIMARY_LSN_SQL).fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_dsn, autocommit=True) as replica:
        while replica.execute(READING_SQL).fetchone()[0] < target:
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not catch up with the bench database")
            time.sleep(0.5)


class LagWatch:
    """The replica's lag (seconds behind, `READING_SQL`), read in a thread until stopped."""

    def __init__(self, replica_dsn: str):
        from geomarket.db.replicas import READING_SQL

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(replica_dsn, READING_SQL))

    def _watch(self, dsn: str, sql: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            while not self._stop.wait(LAG_INTERVAL_SECONDS):
                self.samples.append(connection.execute(sql).fetchone()[1])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def committed(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        return connection.execute(COMMITTED_SQL).fetchone()[0]


def read_paths(words: list[str], points, rng):
    """Searches and open-now nearby reads in turn, each new to the caches."""
    searches = uncached_search_paths(words, rng)
    while True:
        yield next(searches)
        lat, lng = rng.choice(points)
        yield "/api/v1/products/nearby/?" + urlencode(
            {
                "lat": f"{lat + rng.uniform(-0.002, 0.002):.6f}",
                "lng": f"{lng + rng.uniform(-0.003, 0.003):.6f}",
                "open_now": "true",
            }
        )


def run(
    *, base_url: str, dsn: str, rng, log, workers: int | None = None, server_env: dict | None = None
) -> dict:
    """`base_url` is the server on the primary alone; the split one is started here."""
    replica_dsn = replica_url(dsn, log)
    if replica_dsn is None:
        log("  skipped: no replica")
        return {"skipped": "no replica", "ratios": {}, "failures": []}
    caught_up(dsn, replica_dsn)
    words = common_title_words(dsn)
    points = city_points(dsn, rng=rng, count=2_000)
    # Django's settings take psycopg's URLs as they take postgis:// ones.
    env = processes.production_env(
        database_url=dsn, DATABASE_REPLICA_URLS=replica_dsn, **(server_env or {})
    )
    split = {"primary": 0, "replica": 0}

    def measured(name: str, base: str, count: bool):
        def slice_():
            before = (committed(dsn), committed(replica_dsn)) if count else None
            measurement = http_scenario(
                name=name,
                base_url=base,
                paths=read_paths(words, points, rng),
                concurrency=CLIENTS,
                duration=SLICE_SECONDS,
            )
            if count:
                split["primary"] += committed(dsn) - before[0]
                split["replica"] += committed(replica_dsn) - before[1]
            return measurement

        return slice_

    with (
        processes.uvicorn_server(
            app="geomarket.asgi:application",
            workers=workers or processes.workers(),
            env=env,
            ready_path="/healthz",
        ) as split_url,
        LagWatch(replica_dsn) as lag,
    ):
        results = interleaved(
            ROUNDS,
            primary=measured("reads, primary alone", base_url, count=False),
            replica=measured("reads, primary and replica", split_url, count=True),
        )
    lags = sorted(lag.samples)
    for measurement in results.values():
        log(
            f"  {measurement.name:<32} c={CLIENTS} {measurement.rps:8.1f} rps"
            f"  p50 {measurement.p50_ms:6.1f} ms  p95 {measurement.p95_ms:6.1f} ms"
            f"  errors {measurement.errors}"
        )
    lag_p50, lag_max = percentile(lags, 0.5), (lags[-1] if lags else float("nan"))
    log(
        f"  split server's transactions: primary {split['primary']}, replica"
        f" {split['replica']}; replica lag p50 {lag_p50:.3f} s, max {lag_max:.3f} s"
        f" ({len(lags)} readings)"
    )
    failures = [
        f"{measurement.name}: {measurement.errors} errors"
        for measurement in results.values()
        if measurement.errors
    ]
    return {
        "measurements": [measurement.as_dict() for measurement in results.values()],
        "transactions": split,
        "lag_seconds": {"p50": lag_p50, "max": lag_max, "readings": len(lags)},
        "ratios": {
            "replica_split_rps_vs_primary_c8": {
                "value": ratio(results["replica"], results["primary"], "rps"),
                "target": None,
            },
            "replica_share_of_split_reads": {
                "value": round(split["replica"] / max(sum(split.values()), 1), 3),
                "target": None,
            },
            "replica_lag_max_s": {"value": round(lag_max, 3), "target": None},
        },
        "failures": failures,
    }


def main() -> int:
    from bench.common.harness import run_alone

    return run_alone("replica", run)


if __name__ == "__main__":
    raise SystemExit(main())
