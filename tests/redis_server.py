"""A redis-server of a test's own: for tests that stop, flush or cut off Redis, which on
the shared server would reach every other process using it (another test worker, a
development stack)."""

import shutil
import socket
import subprocess
import threading
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


class SilencingProxy:
    """A TCP proxy to the Redis at `port`, whose open connections can be silenced: from
    then on what either side sends is dropped, and neither is told, as when a peer
    vanishes without a word (a host gone, a NAT that forgot the connection). Connections
    opened later go through."""

    def __init__(self, port: int):
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.silenced: set[int] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            pair = len(self.pairs)
            self.pairs.append((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(pair, source, target), daemon=True
                ).start()

    def _pump(self, pair: int, source: socket.socket, target: socket.socket):
        try:
            while data := source.recv(65536):
                if pair not in self.silenced:
                    target.sendall(data)
        except OSError:
            pass
        finally:
            if pair not in self.silenced:
                source.close()
                target.close()

    def silence(self):
        """Silence the connections open now."""
        self.silenced.update(range(len(self.pairs)))

    def close(self):
        self.listener.close()
        for pair in self.pairs:
            for end in pair:
                end.close()
