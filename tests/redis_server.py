"""A redis-server of a test's own: for tests that stop, flush or cut off Redis, which on
the shared server would reach every other process using it (another test worker, a
development stack)."""

import shutil
import subprocess
import time

from bench.common.processes import free_port, port_is_open


class RedisServer:
    """A real redis-server on a port of its own, keeping its files in `directory`."""

    def __init__(self, directory):
        self.port = free_port()
        self.dir = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if port_is_open(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"
