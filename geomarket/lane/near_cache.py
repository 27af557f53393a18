"""A copy, in each server process, of the front-cache entries it served lately, kept as
current as Redis by Redis itself.

A front-cache hit pays one Redis round trip (`MGET` of the namespace versions and the
entry) on top of the HTTP exchange; on the development VM that is a quarter of the hit.
For an entry this process has already read or filed, the copy answers without it.

It stays current through Redis's server-assisted client-side caching (`CLIENT TRACKING`
in broadcast mode): on a connection of its own, Redis sends the process a message for
every change to a namespace version key, including expiry, eviction and flushes. Any
such message makes the copy forget the versions and every entry. Answers are filed under
the versions read before they were computed, so an entry is served only while its
versions are the current ones, exactly as in Redis.

Why a message always arrives in time:
- Redis queues it in the same turn of its event loop as its reply to the writer's
  `INCR`. A reader's request that must see the write is sent only after the writer's
  answer, so the message reaches this process's socket before that request does; before
  trusting the copy, a lookup lets the event loop read what its sockets hold.
- Versions read by a lookup are kept only if no message (and no reconnection) came while
  it was in flight. A change made after Redis answered the read sends its message later,
  which clears them.
- The copy is used only while its connection is up and has answered a heartbeat within
  two intervals: a dropped or silent connection may have dropped a message.
"""

import asyncio
import collections
import logging
import time
from typing import NamedTuple

from django.conf import settings
from redis.exceptions import RedisError

from geomarket import answer_cache
from geomarket.lane.redis_async import RedisPipe

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "__redis__:invalidate"
# After the connection fails, lookups go to Redis alone this long before it is retried.
RECONNECT_SECONDS = 1.0

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class _Entry(NamedTuple):
    versions: dict[str, str]
    expires_at: float  # wall-clock time, as the entry's TTL in Redis
    answer: Answer
    size: int


class NearCache:
    """The copy for one event loop, Redis URL and key prefix."""

    def __init__(self, *, url: str, version_prefix: str, max_bytes: int, heartbeat: float):
        self.url = url
        self.version_prefix = version_prefix
        self.max_bytes = max_bytes
        self.heartbeat = heartbeat
        self.versions: dict[str, str] | None = None
        # Counts forgettings, so a read in flight during one can tell.
        self.generation = 0
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._bytes = 0
        self._loop = asyncio.get_running_loop()
        self._trusted_until = 0.0
        self._retry_at = 0.0
        self._link: asyncio.Task | None = None
        self._pipe: RedisPipe | None = None

    def trusted(self) -> bool:
        """Whether the copy may answer: its connection is up and lately heard from."""
        if self._link is None or self._link.done():
            if self._loop.time() >= self._retry_at:
                self._link = self._loop.create_task(self._keep_link())
            return False
        # A hang-up is seen here as soon as the socket is read, before `_lost` runs.
        return self._loop.time() < self._trusted_until and self._pipe.connected()

    async def answer(self, key: str) -> Answer | None:
        """A current answer for `key` from the copy, or None to ask Redis."""
        if not self.trusted() or key not in self._entries:
            return None
        if self._pipe.readable():
            # Two turns of the event loop (one under uvloop) run the callbacks of readable
            # sockets: an invalidation already received is applied before answering.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if not self.trusted():
                return None
        if self.versions is None:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.versions != self.versions or time.time() >= entry.expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.answer

    def keep_versions(self, versions: dict[str, str], *, generation: int) -> None:
        """Adopt the versions a lookup read, unless something was forgotten meanwhile."""
        if generation == self.generation and self.trusted():
            self.versions = versions

    def keep(self, key: str, *, versions: dict[str, str], expires_at: float, answer: Answer):
        size = len(answer[2]) + len(key)
        if size > self.max_bytes // 8 or not self.trusted():
            return
        self._drop(key)
        self._entries[key] = _Entry(dict(versions), expires_at, answer, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def forget(self) -> None:
        self.versions = None
        self.generation += 1
        self._entries.clear()
        self._bytes = 0

    def _invalidated(self, message: list) -> None:
        self.forget()

    def _lost(self) -> None:
        self._trusted_until = 0.0
        self.forget()

    async def _keep_link(self) -> None:
        options = settings.CACHES["default"].get("OPTIONS", {})
        pipe = RedisPipe(
            self.url,
            timeout=options.get("SOCKET_TIMEOUT", 1),
            connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT", 1),
            on_message=self._invalidated,
            on_lost=self._lost,
            # A new connection would track nothing: the copy waits for a new link instead.
            reconnect=False,
        )
        self._pipe = pipe
        try:
            client_id = await pipe.execute("CLIENT", "ID")
            await pipe.execute(
                "CLIENT", "TRACKING", "on", "REDIRECT", client_id,
                "BCAST", "PREFIX", self.version_prefix,
            )  # fmt: skip
            await pipe.execute("SUBSCRIBE", INVALIDATION_CHANNEL)
            # Nothing read before the subscription can be vouched for.
            self.forget()
            while True:
                await pipe.execute("PING")
                self._trusted_until = self._loop.time() + 2 * self.heartbeat
                await asyncio.sleep(self.heartbeat)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.debug("near cache off until Redis answers again: %r", exc)
        finally:
            self._retry_at = self._loop.time() + RECONNECT_SECONDS
            self._lost()
            pipe.close()

    def close(self) -> None:
        if self._link is not None and not self._loop.is_closed():
            self._link.cancel()


class _Copies:
    """One copy per event loop: its connection belongs to the loop that opened it."""

    def __init__(self):
        self._copy: NearCache | None = None
        self._loop = None
        self._caches = None

    def get(self) -> NearCache | None:
        """This loop's copy for the current cache settings, or None when it is off."""
        loop = asyncio.get_running_loop()
        # Looked up on every search request: the settings are compared by identity, which
        # any change of them (an override in tests) replaces.
        caches = settings.CACHES
        if loop is self._loop and caches is self._caches:
            return self._copy
        self.close()
        self._loop, self._caches = loop, caches
        if settings.NEAR_CACHE_BYTES > 0:
            self._copy = NearCache(
                url=caches["default"]["LOCATION"],
                version_prefix=answer_cache.version_key(""),
                max_bytes=settings.NEAR_CACHE_BYTES,
                heartbeat=settings.NEAR_CACHE_HEARTBEAT_SECONDS,
            )
        return self._copy

    def close(self) -> None:
        if self._copy is not None:
            self._copy.close()
        self._copy = None
        self._loop = self._caches = None


copies = _Copies()
