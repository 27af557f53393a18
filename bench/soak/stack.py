"""The soak's processes: each in a process group of its own, its redis-servers, the
supervisor that restarts what exits, and the production server's environment."""

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT
from bench.common.processes import port_is_open, production_env, wait_ready
from bench.common.report import log
from bench.soak.config import CACHE_KEY_PREFIX, NO_LIMIT, PR_SET_PDEATHSIG, RUN_DIR

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the soak process dies, even by SIGKILL."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A subprocess in a process group of its own, so that stopping it stops its
    children too (uvicorn's and Celery's worker processes), and so that Ctrl-C reaches
    only the soak, which then stops everything in order."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Only safe while no other thread runs; the soak starts none.
                preexec_fn=(
                    _die_with_parent
                    if _libc is not None and threading.active_count() == 1
                    else None
                ),
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def terminate(self) -> None:
        if self.running():
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(5)
        # Whatever of its group outlived the leader (a pool process) goes too.
        self._signal_group(signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RedisServer:
    """A redis-server of the soak's own: no snapshots, an append-only file in `directory`,
    so what the broker held survives a restart as it would in production."""

    def __init__(self, name: str, directory: Path, port: int):
        directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (make setup installs it)")
        self.child = Child(
            f"redis-server ({name})",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(directory),
            ],
            env=dict(os.environ),
            log_path=RUN_DIR / f"redis-{name}.log",
        )

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.child.start()
        deadline = time.monotonic() + 15
        while not port_is_open(self.port):
            if not self.child.running() or time.monotonic() > deadline:
                raise SystemExit(f"redis-server ({self.name}) did not start:\n{self.child.tail()}")
            time.sleep(0.05)

    async def start_async(self) -> None:
        for _ in range(3):
            self.child.start()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.child.running():
                if port_is_open(self.port):
                    return
                await asyncio.sleep(0.05)
            self.child.stop()
        raise RuntimeError(f"redis-server ({self.name}) did not restart:\n{self.child.tail()}")

    async def stop_async(self) -> None:
        self.child.terminate()
        deadline = time.monotonic() + 15
        while self.child.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.child.stop(timeout=5)


class Stack:
    """Every process the soak starts, stopped in reverse order whatever happens."""

    def __init__(self):
        self.children: list[Child] = []

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        stopped = []
        for child in reversed(self.children):
            if child.process is not None:
                child.stop()
                stopped.append(child.name)
        self.children.clear()
        if stopped:
            log(f"stopped: {', '.join(stopped)}")


class Supervisor:
    """Restarts the web server, the worker or beat when one exits, as systemd's
    `Restart=always` would, and remembers each exit: the soak goes on, and fails."""

    def __init__(self, children: list[Child], clock):
        self.children = children
        self.clock = clock
        self.exits: list[str] = []

    def check(self) -> None:
        for child in self.children:
            if child.process is None or child.running():
                continue
            code = child.process.returncode
            lines = child.tail(400).splitlines()
            reason = next(
                (line for line in reversed(lines) if "CRITICAL" in line or "Unrecoverable" in line),
                next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), ""),
            )
            text = f"t={self.clock():.0f}s {child.name} exited with code {code}: {reason[:200]}"
            self.exits.append(text)
            log(f"  {text}; restarting it")
            child.stop()
            child.start()


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b")


def server_env(*, database_url: str, cache: RedisServer, broker: RedisServer) -> dict:
    """The production settings of the bench, on the soak's database and redis-servers."""
    return production_env(
        database_url=database_url,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=cache.url(0),
        CELERY_BROKER_URL=broker.url(0),
        CACHE_KEY_PREFIX=CACHE_KEY_PREFIX,
        # The soak's webhook receivers listen on loopback, over plain http.
        WEBHOOK_ALLOW_PRIVATE_URLS="true",
        # A delivery or confirmation the broker lost in a fault goes out again within the
        # drain. Not sooner: the queues wait up to a minute after an outage here, and each
        # hand-over before a task's turn is a copy the workers run for nothing.
        WEBHOOK_RESEND_SECONDS="60",
        OUTBOX_RESEND_SECONDS="60",
        SUGGEST_RATE_LIMIT_PER_MINUTE=NO_LIMIT,
        TOKEN_RATE_LIMIT_PER_MINUTE=NO_LIMIT,
        REGISTER_RATE_LIMIT_PER_MINUTE=NO_LIMIT,
        ORDER_RATE_LIMIT_PER_MINUTE=NO_LIMIT,
        ORDER_IP_RATE_LIMIT_PER_MINUTE=NO_LIMIT,
    )


def wait_healthy(base_url: str, web: Child, timeout: float = 60.0) -> None:
    if wait_ready(f"{base_url}/healthz", timeout=timeout, alive=web.running, interval=0.2):
        return
    if not web.running():
        raise SystemExit(f"the web server exited:\n{web.tail()}")
    raise SystemExit(f"the web server did not become healthy:\n{web.tail()}")
