import asyncio
import contextlib
import contextvars
import io
import os

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core import checks, signals
from django.core.cache import caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.management.base import SystemCheckError
from django.http import FileResponse
from django.urls import get_resolver, set_script_prefix

from geomarket import answer_cache
from geomarket.api.middleware import body_too_large, declared_length_refusal
from geomarket.lane import front_cache
from geomarket.lane.checks import TAG as LANE_CHECKS
from geomarket.lane.routes import routes_by_path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")


class SingleHopASGIHandler(ASGIHandler):
    """Django's ASGI handler, serving each request in one hop to a worker thread.

    Django's own handler, with its middleware chain in async mode, hops to a thread for
    every method of every `MiddlewareMixin` middleware (all of Django's own), for the
    sync DRF view, and for the request signals: about 17 hops, some 4 ms a request here
    before any work is done. This handler builds the chain in sync mode and runs the
    request signal, the chain and, for ordinary responses, `close()` (which returns the
    database connection to the pool) in a single hop; the event loop only reads the body
    and writes the response.

    That hop goes to the event loop's pool of reused threads, not to a thread of its own:
    Django's handler opens a `ThreadSensitiveContext` per request, which starts a new
    thread for each one and rebuilds every thread-local object (database and cache
    handles) with it; here that cost about 3 ms of CPU per order placed. The request's
    work still runs in one thread from start to finish, as under a threaded WSGI server,
    and the thread holds no connection between requests (they go back to the pool).

    Async views still run as coroutines: called from that thread, asgiref schedules them
    back on the server's event loop, so their fan-out stays concurrent. What is given up
    is cancelling a view when its client disconnects, which Django does only for async
    views.

    Before any of that, the event-loop lane (`geomarket.lane`) answers what it can: a
    request the front cache holds a current answer for, and the plain requests of the
    fast routes the apps declare (`FAST_ROUTES`).
    """

    def __init__(self):
        # A lane that would bypass a middleware, or a route naming no view, must not serve.
        errors = [error for error in checks.run_checks(tags=[LANE_CHECKS]) if error.is_serious()]
        if errors:
            raise SystemCheckError("\n".join(str(error) for error in errors))
        super().__init__()
        # Resolved once: a request's path is looked up here, not reversed per request.
        self.routes = routes_by_path()
        self._matches: dict[str, tuple] = {}

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    # Paths whose match is kept, at most; then the kept ones are dropped and kept anew.
    MATCHES_KEPT = 4096

    def resolve_request(self, request):
        """Django's `resolve_request`, keeping each path's match for the resolver that made
        it: resolving walks the URL patterns' regexes, include by include, about a tenth
        of a millisecond for an API path here. A middleware setting `request.urlconf` is
        served as Django serves it; a path that matches nothing is not kept (its 404
        raises)."""
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        resolver = get_resolver()
        kept = self._matches.get(request.path_info)
        if kept is None or kept[0] is not resolver:
            kept = (resolver, resolver.resolve(request.path_info))
            if len(self._matches) >= self.MATCHES_KEPT:
                self._matches.clear()
            self._matches[request.path_info] = kept
        request.resolver_match = kept[1]
        return kept[1]

    async def read_body(self, receive):
        """The body as Django's `read_body` reads it, but kept in memory without a spooled
        temporary file when it comes whole in one message no larger than
        `FILE_UPLOAD_MAX_MEMORY_SIZE` (nearly every request: a GET's empty body, a ping's
        hundred bytes), which the spooled file would also have kept in memory."""
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestAborted()
        body = message.get("body", b"")
        whole = not message.get("more_body", False)
        if whole and len(body) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            return io.BytesIO(body)
        first = [message]

        async def replay():
            return first.pop() if first else await receive()

        return await super().read_body(replay)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        front = await front_cache.lookup(scope)
        if front.answer is not None:
            status, headers, body = front.answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        route = self.routes.get(scope["path"])
        if (
            route is not None
            and route.method == "GET"
            and await route.respond(route, scope, send, front=front)
        ):
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            if (
                route is not None
                and route.method == scope["method"] == "POST"
                and await route.respond(route, scope, send, front=front, body_file=body_file)
            ):
                return
            set_script_prefix(get_script_prefix(scope))
            with answer_cache.writes_held() as held:
                response = await sync_to_async(self._respond, thread_sensitive=False)(
                    scope, body_file
                )
            try:
                if response.streaming and response.is_async:
                    await self._send_until_disconnect(response, receive, send)
                    return
                # A client that hung up during sending has nothing left to be told.
                with contextlib.suppress(asyncio.CancelledError):
                    await self.send_response(response, send)
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=False)()
            finally:
                # Once the answer is out: the server reads the connection's next request
                # meanwhile.
                if held:
                    await sync_to_async(answer_cache.write_held, thread_sensitive=False)(held)
        finally:
            body_file.close()

    async def _send_until_disconnect(self, response, receive, send):
        """Send an async streaming answer (an order's live stream) until it ends or the
        client goes: such an answer may never end by itself, and the server tells of a
        client gone only through `receive`."""
        sending = asyncio.ensure_future(self.send_response(response, send))
        listening = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((sending, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, listening):
                task.cancel()
            for task in (sending, listening):
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task

    def _respond(self, scope, body_file):
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        front_cache.store(scope, response)
        route = self.routes.get(scope["path"])
        if route is not None:
            route.learn_headers(route, scope, response)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming or response.is_async:
            # The content is in memory, or comes from the event loop (an order's live
            # stream, which awaits only Redis): finish the request (request_finished,
            # connection back to the pool) before the event loop sends it, so that an
            # answer sent for hours holds no connection and no thread.
            response.close()
        return response


class RequestBodyLimit:
    """Bodies over `REQUEST_BODY_MAX_BYTES` refused with 413 while they arrive, for every
    path the server answers.

    A declared `Content-Length` over the limit is refused before any of the body is read.
    A body without one (chunked) is counted as the application pulls it: once the count
    passes the limit, the application is told the client has gone (`http.disconnect`,
    which makes Django drop the request), `receive` is not called again, and the 413 goes
    out. So at most one server message past the limit is read, and none of it is kept.
    """

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                refusal = declared_length_refusal(value)
                if refusal is not None:
                    await _answer_and_close(refusal, send)
                    return
                break
        # Read per request, so that a test's override of the setting holds.
        limit = settings.REQUEST_BODY_MAX_BYTES
        received = 0
        over = False

        async def capped_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            body = message.get("body")
            if body:
                received += len(body)
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await self.application(scope, capped_receive, send)
        if over:
            await _answer_and_close(body_too_large(), send)


async def _answer_and_close(response, send):
    # The rest of the body is still on its way: closing the connection after the answer
    # keeps the server from reading it (RFC 9110, 15.5.14).
    headers = [(b"connection", b"close"), (b"content-length", str(len(response.content)).encode())]
    headers += [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


def get_asgi_application():
    import django

    django.setup(set_prefix=False)
    # The cache handles, made here, in the context every request inherits, are the ones
    # every request uses (`sync_to_async` takes them to the request's thread); a request
    # making its own built a Redis client anew, about 0.45 ms of CPU.
    for alias in settings.CACHES:
        caches[alias]
    # Built in a context of its own: the server calls this on its event loop, in the
    # context every request then inherits, and building leaves an asgiref `Local` there
    # for each URL resolver it walks (their `populating` flags, some 45), which
    # `sync_to_async` would copy to the request's thread and back for every request,
    # about 0.15 ms of CPU each time.
    return contextvars.copy_context().run(SingleHopASGIHandler)


# Static files (the offline API docs page) are served by Django's own finder-based
# handler, which works with DEBUG off; every other path goes straight to Django. The body
# limit comes first, so that it holds for both.
application = RequestBodyLimit(ASGIStaticFilesHandler(get_asgi_application()))
