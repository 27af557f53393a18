"""PostgreSQL restarts under a running production server: 503 meanwhile, then recovery.

The test runs its own PostgreSQL cluster (beside the checkout's own, where
`scripts/services.sh pg-home` says) and its own uvicorn process, so stopping the database
does not disturb the test database of the suite.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from bench.common.processes import free_port, production_env, uvicorn_argv

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])


def postgres_home() -> Path:
    """Where this checkout's PostgreSQL files may live: the checkout itself may be closed
    to the postgres OS user, and the services script holds the one rule for it."""
    script = ROOT / "scripts" / "services.sh"
    result = subprocess.run([script, "pg-home"], check=True, capture_output=True, text=True)
    return Path(result.stdout.strip())


class PostgresCluster:
    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.port = free_port()

    def _run(self, *command: str) -> None:
        # PostgreSQL refuses to run as root; the postgres user may not enter the checkout,
        # so it starts from /.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120, cwd="/")

    def init(self) -> None:
        self.root.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "geomarket",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )

    def start(self) -> None:
        # TCP only (`-k ''`): a socket under a long checkout path would pass the 107 bytes
        # a Unix socket's path may have.
        options = f"-p {self.port} -k '' -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgis://geomarket@127.0.0.1:{self.port}/faults"


@pytest.fixture
def cluster():
    pg = PostgresCluster(postgres_home() / f"faults-{uuid.uuid4().hex}")
    pg.init()
    pg.start()
    subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "geomarket",
            "-d",
            "postgres",
            "-c",
            "CREATE DATABASE faults",
        ],
        check=True,
        capture_output=True,
    )
    yield pg
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg.stop()
    shutil.rmtree(pg.root, ignore_errors=True)


@pytest.fixture
def server(cluster):
    # A cache key prefix of its own, among what production_env gives: the server shares
    # Redis with other test workers and a development stack, whose cached answers and
    # rate-limit buckets would otherwise be its own. A request waits a second, not the
    # default three, for a connection the stopped database cannot give.
    env = production_env(database_url=cluster.url, LOG_LEVEL="ERROR", DATABASE_CONNECT_TIMEOUT="1")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    port = free_port()
    process = subprocess.Popen(
        uvicorn_argv("geomarket.asgi:application", port=port, workers=1, log_level="error"),
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=30)


NEARBY = "/api/v1/products/nearby/?lat=52.52&lng=13.405&radius={radius}"


def test_outage_answers_503_and_recovers_without_a_restart(cluster, server):
    assert httpx.get(f"{server}/api/v1/categories/").status_code == 200
    # Django answers the first; the nearby route, through its own pool, the second.
    for radius in (1000, 2000):
        assert httpx.get(server + NEARBY.format(radius=radius)).json() == {"results": []}

    cluster.stop()
    during = httpx.get(f"{server}/api/v1/categories/", timeout=30)
    assert during.status_code == 503
    assert "detail" in during.json()
    nearby_during = httpx.get(server + NEARBY.format(radius=3000), timeout=30)
    assert nearby_during.status_code == 503
    health = httpx.get(f"{server}/healthz", timeout=30)
    assert health.status_code == 503
    assert health.json()["checks"]["database"] == "error"

    cluster.start()
    back = time.monotonic()
    status = None
    while time.monotonic() - back < 10:
        status = httpx.get(f"{server}/api/v1/categories/", timeout=10).status_code
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200
    assert httpx.get(f"{server}/healthz").status_code == 200
    back = time.monotonic()
    answers = []
    while time.monotonic() - back < 15 and answers[-3:] != [200] * 3:
        answers.append(httpx.get(server + NEARBY.format(radius=4000 + len(answers))).status_code)
        time.sleep(0.2)
    assert answers[-3:] == [200] * 3
