"""The live streams in Redis: each order's (what `GET orders/{id}/stream/` sends) and the
couriers' (what the console's courier stream sends).

Every entry goes to a Redis stream of its own (an order's keeps its last hour, the
couriers' its last `COURIER_STREAM_HISTORY_SECONDS`, so that a client reconnecting with
`Last-Event-ID` gets what it missed) and is published on a channel of the same name, so
that every web process sees it at once. One script does both, for a batch of entries in
one round trip; the stream's id of the entry is the `id:` of the event.

Entries are written after their change commits, by whoever learns of it first: the
outbox relay for recorded events (`events_publish`), the ping for the courier's point
(`delivery.services.courier_ping`, and the event loop's `delivery.ping_route`). Redis
being down costs the streams those entries and nothing else: the recorded events and
their webhooks do not depend on it, and a ping is answered all the same.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError, ResponseError

from events.models import Event, EventType
from events.serializers import StreamStatusSerializer
from geomarket.answer_cache import breaker_closed, breaker_trip
from geomarket.lane import front_cache

logger = logging.getLogger(__name__)

# KEYS: the streams' keys (each also the name of its channel). ARGV, per key: the oldest
# id it keeps (ms), its lifetime (ms), then the entry's event, tag and data. An entry is
# published as "<id>\n<event>\n<tag>\n<data>" (its data is JSON, which has no raw
# newline).
_PUBLISH_SCRIPT = """
for i, key in ipairs(KEYS) do
  local at = 5 * (i - 1)
  local event, tag, data = ARGV[at + 3], ARGV[at + 4], ARGV[at + 5]
  local id = redis.call('XADD', key, 'MINID', ARGV[at + 1], '*', 'e', event, 's', tag, 'd', data)
  redis.call('PEXPIRE', key, ARGV[at + 2])
  redis.call('PUBLISH', key, id .. '\\n' .. event .. '\\n' .. tag .. '\\n' .. data)
end
return #KEYS
"""
_PUBLISH_SHA = hashlib.sha1(_PUBLISH_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis's name

# The couriers' stream's one event: a courier's new point.
COURIER_EVENT = "courier"


@dataclass(frozen=True)
class StreamEntry:
    """An entry of an order's stream."""

    order_id: int
    # The SSE event name: status, location or eta.
    event: str
    # The order's status when the entry was made: who may see a location depends on it.
    status: str
    data: dict

    def fields(self) -> tuple[str, int, str, str, dict]:
        """Its stream's key and history (s), and its event, tag and data."""
        history = settings.ORDER_STREAM_HISTORY_SECONDS
        return order_stream_key(self.order_id), history, self.event, self.status, self.data


@dataclass(frozen=True)
class CourierMove:
    """An entry of the couriers' stream: a courier moved."""

    # Its answer (`delivery.shapes.COURIER`), at its new point, as operators see it.
    courier: dict
    # The merchants of the orders it carries whose owners may see where it is.
    merchant_ids: tuple[int, ...]

    def fields(self) -> tuple[str, int, str, str, dict]:
        history = settings.COURIER_STREAM_HISTORY_SECONDS
        tag = " ".join(map(str, self.merchant_ids))
        return couriers_stream_key(), history, COURIER_EVENT, tag, self.courier


def merchants_of_tag(tag: bytes) -> list[int]:
    """The merchants of a `CourierMove`'s tag."""
    return [int(merchant_id) for merchant_id in tag.split()]


def order_stream_key(order_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:order-stream:{order_id}"


def couriers_stream_key() -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:couriers-stream"


def _script_arguments(entries: list[StreamEntry | CourierMove]) -> tuple[list[str], list]:
    now_ms = int(time.time() * 1000)
    keys: list[str] = []
    args: list[str | int] = []
    for entry in entries:
        key, history, event, tag, data = entry.fields()
        keys.append(key)
        args += [now_ms - history * 1000, history * 1000, event, tag]
        args.append(json.dumps(data, separators=(",", ":")))
    return keys, args


def _publish(entries: list[StreamEntry | CourierMove]) -> int:
    keys, args = _script_arguments(entries)
    script = get_redis_connection("default").register_script(_PUBLISH_SCRIPT)
    return script(keys=keys, args=args)


def streams_publish(*, entries: list[StreamEntry | CourierMove]) -> int:
    """Append the entries to their streams and publish them; return how many went.
    Called once the change is committed (`events_publish`: its events are), so that an
    entry is never about a change that rolls back."""
    if not entries:
        return 0
    try:
        return _publish(entries)
    except RedisError as exc:
        logger.warning("%d stream entries not published, redis unavailable: %r", len(entries), exc)
        return 0


def ping_streams_publish(*, entries: list[StreamEntry | CourierMove]) -> int:
    """`streams_publish` for a ping's entries, behind the shared circuit breaker: pings are
    the busiest write, and while Redis does not answer, each would otherwise hold its
    thread for the socket timeout."""
    if not entries or not breaker_closed():
        return 0
    try:
        return _publish(entries)
    except RedisError as exc:
        breaker_trip(exc, "live stream publishing")
        return 0


async def ping_streams_publish_async(*, entries: list[StreamEntry | CourierMove]) -> int:
    """`ping_streams_publish` on the event loop's own Redis connection: no thread hop."""
    if not entries or not breaker_closed():
        return 0
    keys, args = _script_arguments(entries)
    client = front_cache.redis_client()
    try:
        try:
            return await client.execute("EVALSHA", _PUBLISH_SHA, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await client.execute("EVAL", _PUBLISH_SCRIPT, len(keys), *keys, *args)
    except (RedisError, OSError) as exc:
        breaker_trip(exc, "live stream publishing")
        return 0


def stream_last_id(key: str) -> str | None:
    """The id of the latest entry of the stream `key` ("0-0" when it has none): a stream opened
    now sends every entry after it, those published while it was subscribing too. None
    when Redis is unavailable.

    Read on the request's thread: behind the shared circuit breaker, so that while Redis
    does not answer, streams opening (their clients reconnect every few seconds) do not
    each hold a thread for the socket timeout, starving other requests."""
    if not breaker_closed():
        return None
    try:
        latest = get_redis_connection("default").xrevrange(key, count=1)
    except RedisError as exc:
        breaker_trip(exc, "live stream opening")
        return None
    return latest[0][0].decode() if latest else "0-0"


def _status_given(event: Event) -> str | None:
    """The status the event gives its order: the first one, at its placement, or a new
    one; None for an event that gives none."""
    if event.order_id is None:
        return None
    if event.type == EventType.ORDER_STATUS_CHANGED:
        return event.data["to_status"]
    if event.type in (EventType.ORDER_PLACED, EventType.ORDER_REJECTED):
        # Read leniently: a relay stopped by one odd row would hold back every event.
        return event.data.get("status")
    return None


def stream_entries_of(events: list[Event]) -> list[StreamEntry]:
    """The stream entries of recorded events: each status an order is given, at its
    placement or later, is its `status`."""
    return [
        StreamEntry(
            order_id=event.order_id,
            event="status",
            status=status,
            data=StreamStatusSerializer({"status": status, "at": event.created_at}).data,
        )
        for event in events
        if (status := _status_given(event)) is not None
    ]
