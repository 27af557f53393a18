"""The served ASGI application: one thread hop per request, async views still async,
request bodies capped as they arrive."""

import asyncio
import contextvars
import json
import select
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.db import connection

from bench.common.processes import production_env, uvicorn_server
from geomarket.asgi import RequestBodyLimit, SingleHopASGIHandler, application

pytestmark = pytest.mark.django_db(transaction=True)


async def test_asgi_application_serves_api_docs_and_static_files():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        categories = await client.get("/api/v1/categories/")
        assert categories.status_code == 200
        assert categories.json()["results"] == []
        missing = await client.get("/api/v1/nope/")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Not found."}
        bundle = await client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        )
        assert bundle.status_code == 200


def test_middleware_chain_is_built_in_sync_mode():
    handler = application.application.application
    assert isinstance(handler, SingleHopASGIHandler)
    # A sync chain: the request crosses into a worker thread once, not once per middleware.
    assert not iscoroutinefunction(handler._middleware_chain)


async def test_requests_reuse_the_loops_worker_threads():
    """No thread per request: a fresh thread rebuilds every thread-local handle."""
    serving_threads = []

    def record(**kwargs):
        # The Thread objects themselves: an OS thread id is reused once its thread ends.
        serving_threads.append(threading.current_thread())

    signals.request_started.connect(record)
    try:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(40):
                assert (await client.get("/api/v1/categories/")).status_code == 200
    finally:
        signals.request_started.disconnect(record)
    # The loop's executor holds at most 32 threads, so 40 requests must share them; a
    # thread of its own per request would make 40.
    assert len(set(serving_threads)) <= 32
    assert threading.current_thread() not in serving_threads


MIB = 1024 * 1024
STATIC_FILE = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
# One of each kind of route: a JSON POST, a GET (the event-loop route's path and a plain
# one), the admin's form login, a static file.
BODY_LIMIT_PATHS = [
    ("POST", "/api/v1/orders/"),
    ("GET", "/api/v1/categories/"),
    ("GET", "/api/v1/products/nearby/?lat=52.52&lng=13.405&radius=1000"),
    ("POST", "/admin/login/"),
    ("POST", STATIC_FILE),
]


def http_scope(method: str, target: str, headers: list[tuple[bytes, bytes]]) -> dict:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


class Body:
    """An ASGI `receive` handing out a body in fixed-size messages, counting what it gives."""

    def __init__(self, total: int, chunk: int):
        self.total = total
        self.chunk = chunk
        self.pulled_messages = 0
        self.pulled_bytes = 0

    async def __call__(self):
        self.pulled_messages += 1
        if self.pulled_bytes >= self.total:
            return {"type": "http.disconnect"}
        size = min(self.chunk, self.total - self.pulled_bytes)
        self.pulled_bytes += size
        return {
            "type": "http.request",
            "body": b"[" * size,
            "more_body": self.pulled_bytes < self.total,
        }


class Sent:
    def __init__(self):
        self.messages = []

    async def __call__(self, message):
        self.messages.append(message)

    @property
    def status(self) -> int:
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return start["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return dict(start["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


@pytest.mark.parametrize(("method", "target"), BODY_LIMIT_PATHS)
async def test_a_chunked_body_is_refused_once_it_passes_the_limit(method, target):
    limit = settings.REQUEST_BODY_MAX_BYTES
    chunk = 64 * 1024
    body = Body(total=16 * MIB, chunk=chunk)
    sent = Sent()
    headers = [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json")]
    await application(http_scope(method, target, headers), body, sent)
    assert sent.status == 413
    assert json.loads(sent.body) == {"detail": f"Request body exceeds the limit of {limit} bytes."}
    assert sent.headers[b"connection"] == b"close"
    # Pulled up to the first message past the limit, and not one more.
    assert body.pulled_messages == limit // chunk + 1
    assert limit < body.pulled_bytes <= limit + chunk


@pytest.mark.parametrize(("method", "target"), BODY_LIMIT_PATHS)
async def test_a_declared_length_over_the_limit_is_refused_before_reading(method, target):
    body = Body(total=16 * MIB, chunk=64 * 1024)
    sent = Sent()
    headers = [(b"content-length", str(16 * MIB).encode())]
    await application(http_scope(method, target, headers), body, sent)
    assert sent.status == 413
    assert "exceeds" in json.loads(sent.body)["detail"]
    assert body.pulled_messages == 0


@pytest.mark.parametrize("length", [b"1_0", b" 10", "\u0661\u0660".encode(), b"-1", b"0x10"])
async def test_a_malformed_content_length_is_400(length):
    body = Body(total=10, chunk=10)
    sent = Sent()
    await application(
        http_scope("POST", "/api/v1/orders/", [(b"content-length", length)]), body, sent
    )
    assert sent.status == 400
    assert json.loads(sent.body) == {"detail": "Malformed Content-Length header."}
    assert body.pulled_messages == 0


class Echo:
    """An application that reads the whole body, as Django does, and keeps it."""

    def __init__(self):
        self.body = b""
        self.told_disconnected = False

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.told_disconnected = True
                return
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})


@pytest.mark.parametrize("framing", ["chunked", "declared"])
async def test_a_body_of_exactly_the_limit_reaches_the_application_whole(settings, framing):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    headers = (
        [(b"transfer-encoding", b"chunked")]
        if framing == "chunked"
        else [(b"content-length", b"1000")]
    )
    echo = Echo()
    sent = Sent()
    await RequestBodyLimit(echo)(http_scope("POST", "/x/", headers), Body(1000, 300), sent)
    assert sent.status == 200
    assert echo.body == b"[" * 1000


@pytest.mark.parametrize(("total", "chunk"), [(300, 300), (1000, 300), (5000, 5000)])
async def test_the_handler_reads_a_body_whole_in_one_message_or_many(settings, total, chunk):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 4096
    body_file = await SingleHopASGIHandler.read_body(
        object.__new__(SingleHopASGIHandler), Body(total, chunk)
    )
    assert body_file.read() == b"[" * total


async def test_a_client_gone_before_its_body_aborts_the_request():
    async def gone():
        return {"type": "http.disconnect"}

    with pytest.raises(RequestAborted):
        await SingleHopASGIHandler.read_body(object.__new__(SingleHopASGIHandler), gone)


async def test_one_byte_past_the_limit_stops_the_application_reading(settings):
    settings.REQUEST_BODY_MAX_BYTES = 1000
    echo = Echo()
    sent = Sent()
    body = Body(1001, 300)
    headers = [(b"transfer-encoding", b"chunked")]
    await RequestBodyLimit(echo)(http_scope("POST", "/x/", headers), body, sent)
    assert sent.status == 413
    assert echo.told_disconnected
    assert len(echo.body) == 900
    assert body.pulled_messages == 4


def send_body(base_url: str, method: str, target: str, *, total: int, chunked: bool):
    """Send a request with a body of `total` bytes over a new connection, a piece at a time,
    stopping as soon as the server answers; returns the status and the body of the answer."""
    address = urlsplit(base_url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    request_head = (
        f"{method} {target} HTTP/1.1\r\nHost: {address.hostname}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    chunk = 64 * 1024
    piece = b"[" * chunk
    if chunked:
        piece = f"{chunk:x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request_head.encode())
        try:
            for _ in range(total // chunk):
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer is there
                sock.sendall(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed; its answer is still to be read
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else None
    return status, body


@pytest.fixture(scope="module")
def served_on_the_test_database(django_db_setup):
    """The application under uvicorn, in a process of its own, on the test database; one
    server for the module, as a deployment serves one request after another (starting it
    takes seconds)."""
    parts = urlsplit(settings.DATABASE_URL)
    database_url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    env = production_env(database_url=database_url)
    with uvicorn_server(
        app="geomarket.asgi:application", workers=1, env=env, ready_path="/healthz"
    ) as base_url:
        yield base_url


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "declared"])
def test_a_served_16_mib_body_is_413_and_the_server_stays_healthy(
    served_on_the_test_database, chunked
):
    base_url = served_on_the_test_database
    answers = {
        target: send_body(base_url, method, target, total=16 * MIB, chunked=chunked)
        for method, target in BODY_LIMIT_PATHS
    }
    assert {target: status for target, (status, _) in answers.items()} == {
        target: 413 for _, target in BODY_LIMIT_PATHS
    }
    limit = settings.REQUEST_BODY_MAX_BYTES
    for _, body in answers.values():
        assert json.loads(body) == {"detail": f"Request body exceeds the limit of {limit} bytes."}
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    assert httpx.get(f"{base_url}/api/v1/categories/").status_code == 200


def test_building_the_application_leaves_no_local_in_the_callers_context():
    """The server builds the application in the context every request inherits; each
    asgiref `Local` left there is copied to the request's thread and back per request."""
    from asgiref.local import _Storage
    from django.urls import clear_url_caches

    from geomarket.asgi import get_asgi_application

    # Resolvers not yet populated, as in a server process starting.
    clear_url_caches()
    context = contextvars.Context()
    context.run(get_asgi_application)
    left = [value.data for value in context.values() if isinstance(value, _Storage)]
    assert not [data for data in left if "populating" in data]


async def test_a_paths_match_is_resolved_once_for_its_urlconf(monkeypatch, settings):
    from django.urls.resolvers import URLResolver

    resolved = []
    resolve = URLResolver.resolve

    def counted(self, path):
        if self.pattern.regex.pattern == "^/":
            resolved.append((self.urlconf_name, path))
        return resolve(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counted)
    handler = SingleHopASGIHandler()
    transport = httpx.ASGITransport(app=handler)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for _ in range(3):
            assert (await client.get("/api/v1/categories/")).status_code == 200
        assert (await client.get("/api/v1/nope/")).status_code == 404
        assert (await client.get("/api/v1/nope/")).status_code == 404
        settings.ROOT_URLCONF = "rest_framework.urls"
        assert (await client.get("/api/v1/categories/")).status_code == 404
    assert resolved == [
        ("geomarket.urls", "/api/v1/categories/"),
        ("geomarket.urls", "/api/v1/nope/"),
        ("geomarket.urls", "/api/v1/nope/"),
        ("rest_framework.urls", "/api/v1/categories/"),
    ]


def test_requests_use_the_cache_handles_made_with_the_application():
    """A cache handle made per request builds its Redis client anew each time."""
    from django.core.cache import caches

    from geomarket.asgi import get_asgi_application

    handles = []

    def record(**kwargs):
        handles.append(caches["default"])

    async def three_requests(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(3):
                # A task per request, as the server runs each.
                answer = await asyncio.create_task(client.get("/api/v1/categories/"))
                assert answer.status_code == 200

    def serve():
        # As the server does: the application built in the context its requests inherit.
        asyncio.run(three_requests(get_asgi_application()))

    signals.request_started.connect(record)
    try:
        contextvars.Context().run(serve)
    finally:
        signals.request_started.disconnect(record)
    assert len(handles) == 3
    assert len({id(handle) for handle in handles}) == 1
