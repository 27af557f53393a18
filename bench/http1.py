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
        lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self.host_header]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}".encode("latin-1"))
        if body is not None:
            lines.append(b"Content-Length: " + str(len(body)).encode())
        self.writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
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
        status_line = await self.reader.readline()
        if not status_line:
            raise _Stale()
        try:
            status = int(status_line.split(b" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise ProtocolError(f"bad status line {status_line!r}") from exc
        headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            content = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._read_chunks()
        elif status in (204, 304) or status < 200:
            content = b""
        else:
            raise ProtocolError("a response without Content-Length or chunked encoding")
        return Response(status, headers, content)

    async def _read_chunks(self) -> bytes:
        chunks = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class BlockingClient:
    """One connection for code that waits for each answer in turn, as one user would."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, timeout=300.0):
        self.loop = asyncio.new_event_loop()
        self.connection = Connection(base_url, timeout=timeout)
        self.headers = headers or {}

    def get(self, path: str) -> Response:
        return self.loop.run_until_complete(
            self.connection.request("GET", path, headers=self.headers)
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.loop.run_until_complete(self.connection.close())
        self.loop.close()
