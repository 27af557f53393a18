"""The processes the bench and the soak start: the production server (uvicorn and the
outbox relay), the HTTP floor, and what they share: a free port, waiting for an answer."""

import itertools
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

import httpx

from bench.common import ROOT

# The ports of the servers the bench, the soak and the tests start: below the range
# Linux takes outgoing connections' ports from (32768 and up; scripts/ports.env), above
# the project-local services' defaults.
SERVER_PORTS = range(28000, 32768)
# Its own generator: a test seeding `random` must not make every test worker draw alike.
_draw = random.Random(secrets.randbits(64))
# The ports in an order of this process's own, taken in turn: two ports drawn before
# either server binds its own (a test's cache and broker) are never the same one.
_ORDER = _draw.sample(SERVER_PORTS, len(SERVER_PORTS))
_turn = itertools.count()


def free_port() -> int:
    """A port nothing is bound to now, from `SERVER_PORTS`. A port the kernel picks
    (bind to port 0) lies in the range outgoing connections take theirs from: a server
    stopped and started again on it (a fault test's Redis, the restart test's PostgreSQL)
    could find it held by one of the thousands of connections the suite opens, and fail
    to bind. Each process walks the range in an order drawn at random, so that test
    workers seldom meet, and gives no port again before it has given every other."""
    for _ in range(len(_ORDER)):
        port = _ORDER[next(_turn) % len(_ORDER)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {SERVER_PORTS}")


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def workers() -> int:
    """`BENCH_WORKERS`, else a uvicorn worker per core."""
    return int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))


def wait_ready(
    url: str, *, timeout: float, alive: Callable[[], bool] = lambda: True, interval: float = 0.1
) -> bool:
    """Poll `url` until it answers 200 (True), or until the process that should answer is
    gone or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return False


def uvicorn_argv(app: str, *, port: int, workers: int, log_level: str = "warning") -> list[str]:
    """The command line serving `app` as a deployment serves GeoMarket (`scripts/serve`,
    which holds the server's options), with this Python, on 127.0.0.1:`port`."""
    return [
        "env",
        f"PYTHON={sys.executable}",
        f"ASGI_APP={app}",
        str(ROOT / "scripts" / "serve"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        log_level,
    ]


@contextmanager
def uvicorn_server(*, app: str, workers: int, env: dict, ready_path: str):
    """`app` served by uvicorn as a separate process, until the context ends."""
    port = free_port()
    process = subprocess.Popen(uvicorn_argv(app, port=port, workers=workers), cwd=ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(
            f"{base_url}{ready_path}", timeout=60, alive=lambda: process.poll() is None
        )
        if not ready:
            raise SystemExit(f"{app} did not become ready")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def production_env(*, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a process with the production settings on the bench database.

    Compiled modules are kept (under .local/, out of the tree), as a deployment keeps
    them: without them each server process compiles some 1,500 modules before it can
    answer, and on a busy machine misses the start-up deadline."""
    inherited = {
        name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
    }
    return {
        **inherited,
        "PYTHONPYCACHEPREFIX": str(ROOT / ".local" / "pycache"),
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
    with uvicorn_server(
        app="bench.common.floor:app", workers=workers, env=env, ready_path="/"
    ) as url:
        yield url
