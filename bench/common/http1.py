"""A lean HTTP/1.1 keep-alive client for the load generator.

The load generator shares the machine's cores with the server under test. httpx spends
2 to 3 ms of CPU on each request here, as much as a cached API answer costs the server,
so at 8 or 16 clients it takes CPU the server needed and the figures measure the
generator as much as the server. This client does only what the benchmark needs: one
connection per client, requests with an optional body, responses framed by
`Content-Length` or chunked encoding. Anything it does not understand is an error.
"""

import asyncio
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class ProtocolError(Exception):
    pass


class _Stale(ConnectionError):
    """The server closed the connection without answering."""


@dataclass
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def _request_bytes(
    method: str, path: str, host: bytes, body: bytes | None, headers: dict[str, str] | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + host]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}".encode("latin-1"))
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def _status(status_line: bytes) -> int:
    if not status_line:
        raise _Stale()
    try:
        return int(status_line.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"bad status line {status_line!r}") from exc


def _add_header(headers: dict[str, str], line: bytes) -> bool:
    """Adds a header line; False at the blank line that ends the headers."""
    if line in (b"\r\n", b"\n", b""):
        return False
    name, _, value = line.decode("latin-1").partition(":")
    headers[name.strip().lower()] = value.strip()
    return True


def _framing(status: int, headers: dict[str, str]) -> int | str:
    """The body's length, "chunked", or 0 for a status without a body."""
    if "content-length" in headers:
        return int(headers["content-length"])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return "chunked"
    if status in (204, 304) or status < 200:
        return 0
    raise ProtocolError("a response without Content-Length or chunked encoding")


def _chunk_size(line: bytes) -> int:
    return int(line.split(b";")[0].strip(), 16)


class Connection:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, base_url: str, *, timeout: float = 30.0):
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("only http:// is supported")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = parts.netloc.encode()
        self.timeout = timeout
        self.reader = None
        self.writer = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return await asyncio.wait_for(self._request(method, path, body, headers), self.timeout)

    async def _request(self, method, path, body, headers) -> Response:
        reused = self.writer is not None
        try:
            return await self._exchange(method, path, body, headers)
        except _Stale:
            if not reused:
                raise ConnectionError("the server closed a new connection") from None
        # The server closed the idle connection (its keep-alive timeout) before this
        # request reached it: nothing was processed, so send it again on a new one.
        return await self._exchange(method, path, body, headers)

    async def _exchange(self, method, path, body, headers) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(_request_bytes(method, path, self.host_header, body, headers))
        try:
            await self.writer.drain()
            response = await self._read_response()
        except (ConnectionError, asyncio.IncompleteReadError, ProtocolError, _Stale):
            await self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _read_response(self) -> Response:
        status = _status(await self.reader.readline())
        headers: dict[str, str] = {}
        while _add_header(headers, await self.reader.readline()):
            pass
        framing = _framing(status, headers)
        if framing == "chunked":
            content = await self._read_chunks()
        else:
            content = await self.reader.readexactly(framing)
        return Response(status, headers, content)

    async def _read_chunks(self) -> bytes:
        chunks = []
        while True:
            size = _chunk_size(await self.reader.readline())
            if size == 0:
                while _add_header({}, await self.reader.readline()):
                    pass
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class BlockingClient:
    """One connection for code that waits for each answer in turn, as one user would.

    It blocks on its socket, as psycopg's connection does for the raw SQL it is measured
    against: driving an event loop for each request cost this client about 0.075 ms a
    request, which a report's latency would otherwise carry."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout=300.0):
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("only http:// is supported")
        self.address = (parts.hostname, parts.port or 80)
        self.host_header = parts.netloc.encode()
        self.timeout = timeout
        self.headers = headers or {}
        self.sock: socket.socket | None = None
        self.stream = None

    def get(self, path: str) -> Response:
        reused = self.sock is not None
        try:
            return self._exchange(path)
        except _Stale:
            if not reused:
                raise ConnectionError("the server closed a new connection") from None
        # As `Connection`: the server closed the idle connection before this request.
        return self._exchange(path)

    def _exchange(self, path: str) -> Response:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.stream = self.sock.makefile("rb")
        try:
            self.sock.sendall(_request_bytes("GET", path, self.host_header, None, self.headers))
            response = self._read_response()
        except (OSError, ProtocolError):  # `_Stale` among them
            self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def _read_exactly(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise ProtocolError(f"the body ended after {len(data)} of {size} bytes")
        return data

    def _read_response(self) -> Response:
        status = _status(self.stream.readline())
        headers: dict[str, str] = {}
        while _add_header(headers, self.stream.readline()):
            pass
        framing = _framing(status, headers)
        if framing != "chunked":
            return Response(status, headers, self._read_exactly(framing))
        chunks = []
        while size := _chunk_size(self.stream.readline()):
            chunks.append(self._read_exactly(size))
            self._read_exactly(2)
        while _add_header({}, self.stream.readline()):
            pass
        return Response(status, headers, b"".join(chunks))

    def close(self) -> None:
        if self.sock is not None:
            self.stream.close()
            self.sock.close()
            self.sock = self.stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
