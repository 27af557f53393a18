"""`scripts/services.sh` brings PostgreSQL up from a checkout its server user cannot enter.

Run as root, the script starts PostgreSQL as the postgres OS user, which a checkout in a
home directory of mode 0700 (such as /root) keeps out. The test gives the script a
`.local` directory inside such a directory, a port of its own and an external Redis (so it
starts no Redis), and stops what it started.
"""

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from bench.common.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.sh"


@pytest.fixture
def closed_checkout(tmp_path):
    """The script's environment, with its `.local` inside a directory of mode 0700."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
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
