"""`scripts/services.sh` brings PostgreSQL up from a checkout its server user cannot enter.

Run as root, the script starts PostgreSQL as the postgres OS user, which a checkout in a
home directory of mode 0700 (such as /root) keeps out. The test gives the script a
`.local` directory inside such a directory, a port of its own and an external Redis (so it
starts no Redis), and stops what it started.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis

from bench.common.processes import free_port
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.sh"


@pytest.fixture
def closed_checkout():
    """The script's environment, with its `.local` inside a directory of mode 0700."""
    # Not under tmp_path: run as another user than root, the cluster lives in that `.local`,
    # and a socket's path there (pytest's tmp_path, then .local/postgres/run/.s.PGSQL.PORT)
    # passes the 107 bytes a Unix-domain socket's path may have.
    home = Path(tempfile.mkdtemp(prefix="geomarket-home-"))
    env = {
        **os.environ,
        "GEOMARKET_LOCAL_DIR": str(home / "geomarket" / ".local"),
        "PG_PORT": str(free_port()),
        # PgBouncer in front of it, from the same closed home.
        "PGBOUNCER": "1",
        "PGBOUNCER_PORT": str(free_port()),
        # Set, so that the script leaves Redis alone; it never connects to it.
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    env.pop("DATABASE_URL", None)
    pg_home = Path(run(env, "pg-home").stdout.strip())
    yield env, home, pg_home
    run(env, "stop")
    # A directory of its own under /var/lib/geomarket, or the test's own .local.
    shutil.rmtree(pg_home.parent if home not in pg_home.parents else pg_home)
    shutil.rmtree(home)


def run(env, command: str) -> subprocess.CompletedProcess:
    result = subprocess.run([SCRIPT, command], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_postgres_comes_up_from_a_checkout_in_a_closed_home(closed_checkout):
    env, home, pg_home = closed_checkout
    started = run(env, "start")
    assert f"PostgreSQL started on 127.0.0.1:{env['PG_PORT']}" in started.stdout
    dsn = f"postgresql://geomarket:geomarket@127.0.0.1:{env['PG_PORT']}/geomarket"
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        assert connection.execute("SELECT postgis_lib_version()").fetchone()[0]
    assert (pg_home / "data" / "PG_VERSION").is_file()
    if os.geteuid() == 0:
        # The postgres user could not have entered the home directory.
        assert home not in pg_home.parents
        assert pg_home.parent.parent == Path("/var/lib/geomarket")
    assert "running" in run(env, "status").stdout.splitlines()[0]
    # Started again, the script finds the same cluster where it left it.
    assert "PostgreSQL already running" in run(env, "start").stdout


def test_pgbouncer_comes_up_beside_the_cluster(closed_checkout):
    """PgBouncer, in transaction mode with prepared statements, its files beside the
    cluster's, lets the app role in with its password to any database."""
    env, _home, pg_home = closed_checkout
    assert f"on 127.0.0.1:{env['PGBOUNCER_PORT']} (transaction pooling)" in run(env, "start").stdout
    assert (pg_home / "pgbouncer" / "pgbouncer.ini").is_file()
    pooled = f"postgresql://geomarket:geomarket@127.0.0.1:{env['PGBOUNCER_PORT']}"
    with psycopg.connect(f"{pooled}/geomarket", connect_timeout=10, prepare_threshold=0) as app:
        for _ in range(2):
            assert app.execute("SELECT current_setting('jit')").fetchone() == ("off",)
    with psycopg.connect(f"{pooled}/pgbouncer", autocommit=True) as console:
        config = {row[0]: row[1] for row in console.execute("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    assert int(config["max_prepared_statements"]) > 0
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"{pooled.replace(':geomarket@', ':wrong@')}/geomarket", connect_timeout=10)
    assert "PgBouncer: running" in run(env, "status").stdout
    run(env, "stop")
    assert "PgBouncer: stopped" in run(env, "status").stdout


def test_pgbouncer_refuses_a_port_another_process_holds(closed_checkout):
    """A listener this checkout did not start (a PgBouncer left by a deleted checkout) is
    not taken for its PgBouncer: the start fails, naming the port, instead of handing the
    app a pooler with another checkout's credentials."""
    env, _home, _pg_home = closed_checkout
    with socket.create_server(("127.0.0.1", int(env["PGBOUNCER_PORT"]))):
        result = subprocess.run(
            [SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{env['PGBOUNCER_PORT']} is taken" in result.stderr
    assert f"started on 127.0.0.1:{env['PGBOUNCER_PORT']}" not in result.stdout


def test_a_redis_this_checkout_did_not_start_is_neither_used_nor_stopped(tmp_path):
    foreign = RedisServer(tmp_path)
    foreign.start()
    env = {
        **os.environ,
        "GEOMARKET_LOCAL_DIR": str(tmp_path / "checkout" / ".local"),
        "REDIS_PORT": str(foreign.port),
        "REDIS_BROKER_PORT": str(free_port()),
        # Set, so that the script leaves PostgreSQL alone.
        "DATABASE_URL": "postgis://geomarket:geomarket@127.0.0.1:1/geomarket",
    }
    env.pop("REDIS_URL", None)
    try:
        started = subprocess.run(
            [SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=120
        )
        assert started.returncode != 0
        assert f"Redis (cache): 127.0.0.1:{foreign.port} is taken" in started.stderr
        assert "taken by a process" in run(env, "status").stdout
        run(env, "stop")
        # Still answering: the stop left what it had not started alone.
        client = redis.Redis(port=foreign.port)
        assert client.ping()
        client.close()
    finally:
        # Whatever the script did start (its broker, when it took the foreign cache for
        # its own) goes too.
        subprocess.run([SCRIPT, "stop"], env=env, capture_output=True, timeout=60)
        foreign.stop()


def test_a_cluster_and_its_pgbouncer_move_to_the_ports_given_now(closed_checkout):
    """Services started before their ports moved (scripts/ports.env) are restarted on the
    new ones by the next start, and PgBouncer forwards to the primary's new port."""
    env, _home, _pg_home = closed_checkout
    run(env, "start")
    moved = {**env, "PG_PORT": str(free_port()), "PGBOUNCER_PORT": str(free_port())}
    started = run(moved, "start").stdout
    assert f"PostgreSQL runs on port {env['PG_PORT']}; restarting it on {moved['PG_PORT']}" in (
        started
    )
    assert "PgBouncer runs on another port" in started
    pooled = f"postgresql://geomarket:geomarket@127.0.0.1:{moved['PGBOUNCER_PORT']}/geomarket"
    with psycopg.connect(pooled, connect_timeout=10, prepare_threshold=0) as app:
        assert app.execute("SELECT current_setting('port')").fetchone() == (moved["PG_PORT"],)
    for port in (env["PG_PORT"], env["PGBOUNCER_PORT"]):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
    assert "PostgreSQL already running" in run(moved, "start").stdout
    run(moved, "stop")


def test_a_redis_moves_to_the_port_given_now_keeping_its_files(tmp_path):
    env = {
        **os.environ,
        "GEOMARKET_LOCAL_DIR": str(tmp_path / "checkout" / ".local"),
        "REDIS_PORT": str(free_port()),
        "REDIS_BROKER_PORT": str(free_port()),
        "DATABASE_URL": "postgis://geomarket:geomarket@127.0.0.1:1/geomarket",
    }
    env.pop("REDIS_URL", None)
    moved = {**env, "REDIS_PORT": str(free_port()), "REDIS_BROKER_PORT": str(free_port())}
    try:
        run(env, "start")
        client = redis.Redis(port=int(env["REDIS_BROKER_PORT"]))
        client.rpush("celery", "queued")
        client.close()
        started = run(moved, "start").stdout
        assert "Redis (broker) runs on another port" in started
        for port in (env["REDIS_PORT"], env["REDIS_BROKER_PORT"]):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
        client = redis.Redis(port=int(moved["REDIS_BROKER_PORT"]))
        # The broker's append-only file came along: what was queued still is.
        assert client.lrange("celery", 0, -1) == [b"queued"]
        client.close()
        assert redis.Redis(port=int(moved["REDIS_PORT"])).ping()
    finally:
        subprocess.run([SCRIPT, "stop"], env=moved, capture_output=True, timeout=60)
        subprocess.run([SCRIPT, "stop"], env=env, capture_output=True, timeout=60)


def test_a_checkout_under_a_long_path_gets_its_sockets_in_a_short_directory():
    """A Unix socket's path may have 107 bytes: a cluster whose files lie under a long
    checkout path (reachable by the server's user, so they stay there) gets its socket,
    and its replica's, in a short directory of the checkout's own, and the replica
    streams from the primary through it."""
    base = Path(tempfile.mkdtemp(prefix="geomarket-long-"))
    base.chmod(0o755)
    local = base / ("a-checkout-path-long-enough-to-pass-the-limit-" * 2) / ".local"
    env = {
        **os.environ,
        "GEOMARKET_LOCAL_DIR": str(local),
        "PG_PORT": str(free_port()),
        "REPLICA_PORT": str(free_port()),
        "REPLICA": "1",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    env.pop("DATABASE_URL", None)
    try:
        assert Path(run(env, "pg-home").stdout.strip()) == local / "postgres"
        started = run(env, "start").stdout
        assert f"PostgreSQL replica started on 127.0.0.1:{env['REPLICA_PORT']}" in started
        # The directory scripts/services.sh names, under /tmp whatever TMPDIR says.
        sockets = list(Path("/tmp").glob("geomarket-*-primary/.s.PGSQL.*"))  # noqa: S108
        assert any(socket.name.endswith(env["PG_PORT"]) for socket in sockets)
        dsn = f"postgresql://geomarket:geomarket@127.0.0.1:{env['PG_PORT']}/geomarket"
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as primary:
            primary.execute("CREATE TABLE streamed (id int)")
        replica = dsn.replace(env["PG_PORT"], env["REPLICA_PORT"])
        deadline = time.monotonic() + 30
        with psycopg.connect(replica, connect_timeout=10, autocommit=True) as standby:
            while standby.execute("SELECT to_regclass('streamed')").fetchone() == (None,):
                assert time.monotonic() < deadline, "the replica never streamed the table"
                time.sleep(0.1)
    finally:
        subprocess.run([SCRIPT, "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(base)
