"""The bench database and the production server process the scenarios run against."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH_MIN_MERCHANTS = 20_000


def bench_database_url() -> str:
    """`BENCH_DATABASE_URL`, else the main database URL with the name `geomarket_bench`."""
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    from django.conf import settings

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/geomarket_bench"))


def psycopg_dsn(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


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


def _manage(*args: str, database_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.development",
        "DEBUG": "false",
    }
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def bench_database_ready(url: str, *, log) -> str:
    """Reuse the bench database when it holds the bench city; create and seed it otherwise."""
    dsn = psycopg_dsn(url)
    count = _merchant_count(dsn)
    if count is None:
        parts = urlsplit(dsn)
        admin = urlunsplit(parts._replace(path="/postgres"))
        name = parts.path.lstrip("/")
        log(f"creating database {name}")
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        count = 0
    _manage("migrate", "--no-input", "-v", "0", database_url=url)
    if count < BENCH_MIN_MERCHANTS:
        if count:
            raise SystemExit(
                f"The bench database holds {count} merchants, fewer than the bench city; "
                "drop it (DROP DATABASE geomarket_bench) and run make bench again."
            )
        log("seeding the bench city (seed_demo --preset bench), once")
        started = time.monotonic()
        _manage("seed_demo", "--preset", "bench", database_url=url)
        log(f"seeded in {time.monotonic() - started:.0f} s")
    else:
        log(f"reusing the bench database ({count} merchants)")
    return dsn


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def uvicorn_server(*, app: str, workers: int, env: dict, ready_path: str):
    """`app` served by uvicorn as a separate process, until the context ends."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base_url}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"{app} did not become ready")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def production_env(*, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a process with the production settings on the bench database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url,
        "CACHE_KEY_PREFIX": f"bench-{secrets.token_hex(4)}",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }


@contextmanager
def production_server(*, database_url: str, workers: int, extra_env: dict | None = None):
    """uvicorn with the production settings, DEBUG off, and the outbox relay, as separate
    processes."""
    env = production_env(database_url=database_url, **(extra_env or {}))
    global _relay
    # The outbox relay publishes order confirmations: its work is part of placing orders.
    _relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        with uvicorn_server(
            app="geomarket.asgi:application", workers=workers, env=env, ready_path="/healthz"
        ) as base_url:
            yield base_url
    finally:
        _relay.send_signal(signal.SIGCONT)
        _relay.terminate()
        _relay.wait(timeout=30)
        _relay = None


_relay: subprocess.Popen | None = None


@contextmanager
def relay_paused():
    """The outbox relay stopped for a while: the raw SQL order baseline writes outbox rows
    too, and publishing them is no part of that baseline's work."""
    if _relay is None:
        yield
        return
    _relay.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        _relay.send_signal(signal.SIGCONT)


@contextmanager
def floor_server(*, workers: int, body_bytes: int):
    """The HTTP floor: an ASGI app that does nothing but answer, served the same way."""
    env = {**os.environ, "FLOOR_BODY_BYTES": str(body_bytes)}
    with uvicorn_server(app="bench.floor:app", workers=workers, env=env, ready_path="/") as url:
        yield url
