"""The application under uvicorn, as production serves it, on the test database and the
real Redis: for what only a real server shows, a live stream read as it comes (pytest-
django's live server is a WSGI one, which would read a stream to its end first). Used by
transactional tests, whose rows the server's connections see.

Each module serves under a Redis key prefix of its own (`key_prefix`), which its tests
take too (`same_keys`), so that what they publish reaches the server."""

import secrets
import time
from contextlib import ExitStack, contextmanager
from importlib import import_module
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection

from bench.common.processes import production_env, uvicorn_server

KEEPALIVE_SECONDS = 0.5
# Sessions made here must hold up there.
SERVER_SECRET_KEY = secrets.token_urlsafe(64)


def key_prefix(name: str) -> str:
    """A prefix of its own per run and worker: ids repeat across the workers' databases."""
    return f"gm-test-{name}-{secrets.token_hex(8)}"


def direct_database_url() -> str:
    """The test database at PostgreSQL itself, past any transaction pooler: for a server
    whose own sessions a test counts (a pooler's server sessions serve every client)."""
    direct = settings.DATABASE_DIRECT
    credentials = f"{quote(direct['USER'])}:{quote(direct['PASSWORD'])}"
    address = f"{direct['HOST']}:{direct['PORT']}"
    return f"postgresql://{credentials}@{address}/{connection.settings_dict['NAME']}"


@contextmanager
def served(*, prefix: str, **env: str):
    """The application under uvicorn on the test database, its Redis keys under `prefix`,
    its streams' keep-alive every `KEEPALIVE_SECONDS`, with `env` besides; its URL."""
    parts = urlsplit(settings.DATABASE_URL)
    env = production_env(
        database_url=urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
        CACHE_KEY_PREFIX=prefix,
        ORDER_STREAM_KEEPALIVE_SECONDS=str(KEEPALIVE_SECONDS),
        SECRET_KEY=SERVER_SECRET_KEY,
        # Plain http: the browser tests sign in over it.
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        **env,
    )
    with uvicorn_server(
        app="geomarket.asgi:application", workers=1, env=env, ready_path="/healthz"
    ) as base_url:
        yield base_url


def same_keys(settings, prefix: str) -> None:
    """This process's Redis keys under the server's `prefix` (`settings`: pytest-django's
    fixture, which restores them after the test)."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}


def session_cookie(settings, user) -> tuple[dict, object]:
    """A `Cookie` header signing `user` in to the served application, and its session
    (`flush()` signs it out)."""
    settings.SECRET_KEY = SERVER_SECRET_KEY
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"}, session


class EventStream:
    """An open Server-Sent Events answer, read message by message."""

    def __init__(self, url: str, *, headers=None, params=None):
        self.client = httpx.Client(timeout=httpx.Timeout(5.0))
        self.exit = ExitStack()
        self.response = self.exit.enter_context(
            self.client.stream("GET", url, headers=headers or {}, params=params or {})
        )
        self.lines = self.response.iter_lines()

    def message(self) -> dict:
        """The next message: {"comment": ...} or {"id", "event", "data"}."""
        message: dict = {}
        for line in self.lines:
            if line == "":
                if message:
                    return message
                continue
            field, _, value = line.partition(":")
            if field == "":
                message["comment"] = value.strip()
            else:
                message[field] = value.strip()
        raise AssertionError("the stream ended")

    def event(self, *, within: float = 5.0) -> dict:
        """The next event, skipping comments; it must come `within` seconds."""
        deadline = time.monotonic() + within
        while "comment" in (message := self.message()):
            assert time.monotonic() < deadline, "no event came"
        return message

    def close(self):
        self.exit.close()
        self.client.close()
