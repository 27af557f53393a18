"""Live streams as Server-Sent Events, read from Redis on the event loop: an order's, and
the couriers' (the console's map).

The view (`apis.OrderStreamApi`, the console's courier stream) authenticates the caller
and reads what it may see once, in Django, notes where the Redis stream stands (unless
the client says where it left off), and hands back a response whose content is
`order_events` or `courier_moves`: from then on the stream awaits only Redis, and holds
no database connection and no thread (`geomarket.asgi` releases them before it sends a
streaming answer).

Entries come from `events.streams`: each order has a Redis stream (its last hour), the
couriers one (its last minute), each with a channel of the same name. Each server
process keeps one connection subscribed to the channels its open streams follow
(`_Hub`), and one for reading missed entries.

Who the caller is and what it may see were decided when the stream opened, and a stream
may stay open for hours: every `STREAM_RECHECK_SECONDS` the view's `standing` is read
again (the caller's user as it is now, with the credential the stream was opened by, in a
thread, the connection given back after), and the stream ends once the caller may no
longer follow it (deactivated, its token deleted or its session signed out, a courier
reassigned, an operator no longer staff, an owner no longer owning), or goes on showing
what its new standing lets it see. Unless the database is away (the stream then goes
on as it was), no entry is shown on a standing older than that.
"""

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from functools import partial

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from redis.exceptions import RedisError

from delivery.selectors import courier_move_shown
from events.streams import couriers_stream_key, merchants_of_tag, order_stream_key
from geomarket.lane.redis_async import RedisPipe
from tracking.selectors import courier_location_visible

logger = logging.getLogger(__name__)

# A Redis stream id: milliseconds and a sequence number, each at most 2^64 - 1.
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
STREAM_ID_PART_MAX = 2**64 - 1
KEEPALIVE = b": keep-alive\n\n"


def _id_key(entry_id: bytes | str) -> tuple[int, int]:
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return int(ms), int(seq)


def _pipe(*, on_message=None) -> RedisPipe:
    options = settings.CACHES["default"].get("OPTIONS", {})
    return RedisPipe(
        settings.CACHES["default"]["LOCATION"],
        timeout=options.get("SOCKET_TIMEOUT", 1),
        connect_timeout=options.get("SOCKET_CONNECT_TIMEOUT", 1),
        on_message=on_message,
        # A subscribed connection lost has lost its subscriptions: the hub starts afresh.
        reconnect=on_message is None,
    )


class _Hub:
    """The channels this process's open streams follow, on one subscribed connection.

    A channel is subscribed while at least one stream follows it. When the connection is
    lost, every stream following a channel ends: its client reconnects with
    `Last-Event-ID` and reads what it missed from the order's Redis stream. A connection
    whose peer went silent (a Redis host gone without a word, a NAT that forgot it) is
    lost too: while streams are open, it is asked for a PING every keep-alive interval,
    and one not answered in the socket timeout closes it. The couriers' stream is one
    more channel, which every open console follows.
    """

    def __init__(self):
        self.followers: dict[bytes, set[asyncio.Queue]] = {}
        # Each followed channel's SUBSCRIBE, which every follower awaits: a second stream
        # of an order must not read its missed entries before the channel is subscribed.
        self.subscriptions: dict[bytes, asyncio.Future] = {}
        self.subscriber: RedisPipe | None = None
        self.reader: RedisPipe | None = None
        self.loop = None

    def _pipes(self) -> tuple[RedisPipe, RedisPipe]:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # A connection belongs to the loop that opened it (tests run several loops).
            self.loop, self.subscriber, self.reader = loop, None, None
            self.followers, self.subscriptions = {}, {}
        if self.subscriber is None:
            self.subscriber = _pipe(on_message=self._message)
            self.subscriber.on_lost = partial(self._lost, self.subscriber)
            self._heartbeat(self.subscriber)
        if self.reader is None:
            self.reader = _pipe()
        return self.subscriber, self.reader

    def _heartbeat(self, subscriber: RedisPipe) -> None:
        """Ping `subscriber` while streams follow it, until it is replaced."""
        if subscriber is not self.subscriber:
            return
        if self.followers and subscriber.connected():
            ping = asyncio.ensure_future(subscriber.execute("PING"))
            ping.add_done_callback(_ignore_failure)
        interval = settings.ORDER_STREAM_KEEPALIVE_SECONDS
        self.loop.call_later(interval, self._heartbeat, subscriber)

    def _message(self, reply: list) -> None:
        for queue in self.followers.get(reply[1], ()):
            queue.put_nowait(reply[2])

    def _lost(self, subscriber: RedisPipe) -> None:
        if subscriber is not self.subscriber:
            return
        self.subscriber = None
        followers, self.followers, self.subscriptions = self.followers, {}, {}
        for queues in followers.values():
            for queue in queues:
                queue.put_nowait(None)

    async def follow(self, channel: bytes) -> asyncio.Queue:
        subscriber, _ = self._pipes()
        queue: asyncio.Queue = asyncio.Queue()
        queues = self.followers.setdefault(channel, set())
        queues.add(queue)
        if len(queues) == 1:
            self.subscriptions[channel] = asyncio.ensure_future(
                subscriber.execute("SUBSCRIBE", channel)
            )
        try:
            # Shielded: a follower cancelled while waiting leaves the others' SUBSCRIBE be.
            await asyncio.shield(self.subscriptions[channel])
        except BaseException:
            self.leave(channel, queue)
            raise
        return queue

    def leave(self, channel: bytes, queue: asyncio.Queue) -> None:
        """Stop giving `queue` the channel's messages; unsubscribe once nobody follows it.
        Not awaited: it runs when a stream's generator is closed, whatever closed it."""
        queues = self.followers.get(channel)
        if queues is None or queue not in queues:
            return
        queues.discard(queue)
        if not queues:
            del self.followers[channel]
            self.subscriptions.pop(channel).add_done_callback(_ignore_failure)
            if self.subscriber is not None:
                # Commands on the connection run in order: a later SUBSCRIBE of the same
                # channel comes after this.
                unsubscribed = asyncio.ensure_future(
                    self.subscriber.execute("UNSUBSCRIBE", channel)
                )
                unsubscribed.add_done_callback(_ignore_failure)

    async def missed(self, key: str, after: str) -> list:
        if _id_key(after) == (STREAM_ID_PART_MAX, STREAM_ID_PART_MAX):
            # No id comes after the last one, and Redis refuses a range past it.
            return []
        _, reader = self._pipes()
        return await reader.execute("XRANGE", key, f"({after}", "+")


def _ignore_failure(future: asyncio.Future) -> None:
    # A connection lost meanwhile has ended every subscription anyway.
    if not future.cancelled():
        future.exception()


hub = _Hub()


# An entry's data as the caller may see it, from its event, tag and data; None when the
# caller may not see the entry.
Shown = Callable[[bytes, bytes, bytes], bytes | None]


def _render(entry_id: bytes, event: bytes, tag: bytes, data: bytes, shown: Shown) -> bytes:
    """The entry as an SSE message, or b"" when the caller may not see it."""
    seen = shown(event, tag, data)
    if seen is None:
        return b""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (entry_id, event, seen)


def order_events(
    *,
    order_id: int,
    roles: set[str],
    after: str | None,
    roles_now: Callable[[], set[str] | None],
) -> AsyncIterator[bytes]:
    """The order's events as the caller (holding `roles` towards it) may see them: a
    courier's point only in the statuses in which the contract lets their roles see it.
    `roles_now` reads the caller's roles again (None: it may no longer follow the order)."""

    def shown_to(held: set[str]) -> Shown:
        def shown(event: bytes, status: bytes, data: bytes) -> bytes | None:
            if event != b"location" or courier_location_visible(roles=held, status=status.decode()):
                return data
            return None

        return shown

    def standing() -> Shown | None:
        held = roles_now()
        return None if held is None else shown_to(held)

    return _events(
        key=order_stream_key(order_id), after=after, shown=shown_to(roles), standing=standing
    )


def courier_moves(
    *, merchant_id: int | None, after: str | None, scope_now: Callable[[], object | None]
) -> AsyncIterator[bytes]:
    """The couriers' moves as the console shows them (`couriers_on_map`): every courier's
    to an operator (`merchant_id` None), to an owner those of the couriers carrying its
    merchant's live orders when they moved, as owners see couriers. `scope_now` reads the
    caller's console scope again: its `merchant_id`, or None once it may not follow it."""

    def shown_to(scoped_to: int | None) -> Shown:
        def shown(event: bytes, merchants: bytes, data: bytes) -> bytes | None:
            return courier_move_shown(
                merchant_id=scoped_to, carrying_for=merchants_of_tag(merchants), courier=data
            )

        return shown

    def standing() -> Shown | None:
        scope = scope_now()
        return None if scope is None else shown_to(scope.merchant_id)

    return _events(
        key=couriers_stream_key(), after=after, shown=shown_to(merchant_id), standing=standing
    )


# The stream is left open as it was when its caller's standing cannot be read (the
# database away): ending it would only send every client back to a 503.
_UNREAD = object()
# Nothing came for a keep-alive interval.
_QUIET = object()


def _standing_read(standing: Callable[[], Shown | None]):
    """`standing()`, run in a thread of the loop's pool; `_UNREAD` when the database failed.
    The thread's connection goes back to the pool after, as at the end of a request."""
    try:
        return standing()
    except DatabaseError as exc:
        logger.warning("live stream's caller not rechecked, database unavailable: %r", exc)
        return _UNREAD
    finally:
        close_old_connections()


async def _events(
    *, key: str, after: str | None, shown: Shown, standing: Callable[[], Shown | None]
) -> AsyncIterator[bytes]:
    """The entries of the stream `key` the caller may see: those after the entry `after`
    first (of the stream's history), then each as it comes, with a comment line every
    `ORDER_STREAM_KEEPALIVE_SECONDS`, whatever else comes. Subscribed before it reads what came
    after `after`, so that nothing falls between the two; an entry both give is sent once.
    What the caller may see is read again (`standing`, a `Shown` or None to end the stream)
    before anything is sent once `STREAM_RECHECK_SECONDS` have passed since it was read."""
    recheck_every = settings.STREAM_RECHECK_SECONDS
    recheck_at = time.monotonic() + recheck_every

    async def still_standing() -> bool:
        """Whether the caller may still follow the stream, its standing read again once
        due (`shown` then is what it may see now)."""
        nonlocal shown, recheck_at
        if time.monotonic() < recheck_at:
            return True
        read = await sync_to_async(_standing_read, thread_sensitive=False)(standing)
        if read is None:
            return False
        if read is not _UNREAD:
            shown = read
        recheck_at = time.monotonic() + recheck_every
        return True

    channel = key.encode()
    try:
        queue = await hub.follow(channel)
    except RedisError as exc:
        logger.warning("live stream not opened, redis unavailable: %r", exc)
        return
    try:
        # Something at once: the client and any proxy learn the stream is open.
        yield KEEPALIVE
        last = _id_key(after) if after else None
        if after:
            try:
                missed = await hub.missed(key, after)
            except RedisError as exc:
                logger.warning("live stream ended, redis unavailable: %r", exc)
                return
            for entry_id, fields in missed:
                if not await still_standing():
                    return
                values = dict(zip(fields[::2], fields[1::2], strict=True))
                last = _id_key(entry_id)
                message = _render(entry_id, values[b"e"], values[b"s"], values[b"d"], shown)
                if message:
                    yield message
        keepalive = settings.ORDER_STREAM_KEEPALIVE_SECONDS
        # Due an interval after the last comment, not after the last entry: entries that
        # keep coming (a courier's points), or that the caller may not see, would
        # otherwise put the comment off for good.
        loop = asyncio.get_running_loop()
        comment_at = loop.time() + keepalive
        while True:
            published = _QUIET
            if loop.time() < comment_at:
                try:
                    async with asyncio.timeout_at(comment_at):
                        published = await queue.get()
                except TimeoutError:
                    pass
            if published is not None and not await still_standing():
                return
            if published is _QUIET:
                yield KEEPALIVE
                comment_at = loop.time() + keepalive
                continue
            if published is None:
                # Redis went away: the client reconnects and reads what it missed.
                return
            entry_id, event, tag, data = published.split(b"\n", 3)
            if last is not None and _id_key(entry_id) <= last:
                # Already sent from the Redis stream.
                continue
            message = _render(entry_id, event, tag, data, shown)
            if message:
                yield message
    finally:
        hub.leave(channel, queue)


def last_event_id_valid(value: str) -> bool:
    """Whether `value` is an id Redis may give a stream's entry: Redis refuses a larger
    one, which would end the stream at once, for a client to reconnect with it forever."""
    if STREAM_ID.fullmatch(value) is None:
        return False
    return max(_id_key(value)) <= STREAM_ID_PART_MAX
