"""The databases the bench and the soak run against: their URLs, `manage.py` on them, and
the bench database made ready once."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.common import ROOT

BENCH_MIN_MERCHANTS = 20_000


def development_url(name: str) -> str:
    """The development settings' database URL with the database `name` instead."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    from django.conf import settings

    return urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{name}"))


def psycopg_dsn(url: str) -> str:
    """A Django database URL (`postgis://`) as psycopg takes it."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql"))


def admin_dsn(dsn: str) -> str:
    """The same server's `postgres` database, to create or drop the one `dsn` names."""
    return urlunsplit(urlsplit(dsn)._replace(path="/postgres"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def manage(*args: str, database_url: str, env: dict | None = None, log_path: Path | None = None):
    """`manage.py` with the development settings, DEBUG off, on `database_url`.

    With `log_path` its output goes there and a failure ends the run with its last lines."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.development",
        "DEBUG": "false",
        **(env or {}),
    }
    argv = [sys.executable, "manage.py", *args]
    if log_path is None:
        subprocess.run(argv, cwd=ROOT, env=env, check=True)
        return
    with open(log_path, "ab") as out:
        result = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"manage.py {args[0]} failed:\n{tail}")


def bench_database_url() -> str:
    """`BENCH_DATABASE_URL`, else the main database URL with the name `geomarket_bench`."""
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    return development_url("geomarket_bench")


def _merchant_count(dsn: str) -> int | None:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT count(*) FROM merchants_merchant WHERE to_regclass('merchants_merchant')"
                " IS NOT NULL"
            ).fetchone()
            return row[0]
    except psycopg.OperationalError:
        return None
    except psycopg.errors.UndefinedTable:
        return 0


def _migrated_merchant_count(url: str, *, log) -> int:
    """The merchants of the database `url` names, once it exists (created when missing)
    and is migrated."""
    dsn = psycopg_dsn(url)
    count = _merchant_count(dsn)
    if count is None:
        name = database_name(dsn)
        log(f"creating database {name}")
        with psycopg.connect(admin_dsn(dsn), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        count = 0
    manage("migrate", "--no-input", "-v", "0", database_url=url)
    return count


def settle(dsn: str) -> None:
    """VACUUM (FREEZE, ANALYZE) the whole database, as autovacuum would in the next minutes.

    Just after the bench city's seed, autovacuum takes its millions of inserted rows for
    work to do, and vacuumed them through the first `make bench` run: orders at 1 client
    took 21.6 ms at p50 against 12.5 in the next run, delivering-to's SQL 3.7 against
    2.0 ms. Done here, once, before the server starts, the first run measures what later
    ones do; the visibility map it fills lets index-only scans skip the heap from the
    start.
    """
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("VACUUM (FREEZE, ANALYZE)")


def bench_database_ready(url: str, *, log) -> str:
    """Reuse the bench database when it holds the bench city; create and seed it otherwise."""
    dsn = psycopg_dsn(url)
    count = _migrated_merchant_count(url, log=log)
    if count < BENCH_MIN_MERCHANTS:
        if count:
            raise SystemExit(
                f"The bench database holds {count} merchants, fewer than the bench city; "
                "drop it (DROP DATABASE geomarket_bench) and run make bench again."
            )
        log("seeding the bench city (seed_demo --preset bench), once")
        started = time.monotonic()
        manage("seed_demo", "--preset", "bench", database_url=url)
        log(f"seeded in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        settle(dsn)
        log(f"vacuumed in {time.monotonic() - started:.0f} s")
    else:
        log(f"reusing the bench database ({count} merchants)")
        # A bench city seeded before merchants had hours gets them added (seconds).
        manage("seed_demo", "--preset", "bench", "--add-hours", database_url=url)
    return dsn


def demo_database_url() -> str:
    """`BENCH_DEMO_DATABASE_URL`, else the main database URL with the name
    `geomarket_bench_demo`: the demo city, kept apart from the development database."""
    if os.environ.get("BENCH_DEMO_DATABASE_URL"):
        return os.environ["BENCH_DEMO_DATABASE_URL"]
    return development_url("geomarket_bench_demo")


def demo_database_ready(url: str, *, log) -> str:
    """Reuse the demo-city database when it holds merchants; create it and seed it with
    `seed_demo --preset demo` (a few seconds) otherwise."""
    if _migrated_merchant_count(url, log=log):
        log(f"reusing the demo-city database {database_name(url)}")
        manage("seed_demo", "--preset", "demo", "--add-hours", database_url=url)
    else:
        log(f"seeding the demo city in {database_name(url)} (seed_demo --preset demo)")
        manage("seed_demo", "--preset", "demo", database_url=url)
    return psycopg_dsn(url)
