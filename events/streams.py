"""Each order's live stream in Redis: what `GET orders/{id}/stream/` sends.

Every entry goes to a Redis stream of its own order (kept for the last hour, so that a
client reconnecting with `Last-Event-ID` gets what it missed) and is published on a channel
of the same name, so that every web process sees it at once. One script does both, for a
batch of entries in one round trip; the stream's id of the entry is the `id:` of the event.

Entries are written after their change commits, by whoever learns of it first: the
outbox relay for recorded events (`events_publish`), the ping for the courier's point
(`delivery.services.courier_ping`). Redis being down costs the streams those entries
and nothing else: the recorded events and their webhooks do not depend on it.
"""

import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from events.models import Event, EventType
from events.serializers import StreamStatusSerializer
from geomarket.answer_cache import breaker_closed, breaker_trip

logger = logging.getLogger(__name__)

# KEYS: the orders' stream keys (each also the name of its channel). ARGV: the oldest id
# kept (ms), the key's lifetime (ms), then per key: event, status, data. An entry is
# published as "<id>\n<event>\n<status>\n<data>" (its data is JSON, which has no raw
# newline).
_PUBLISH_SCRIPT = """
for i, key in ipairs(KEYS) do
  local event, status, data = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local id = redis.call('XADD', key, 'MINID', ARGV[1], '*', 'e', event, 's', status, 'd', data)
  redis.call('PEXPIRE', key, ARGV[2])
  redis.call('PUBLISH', key, id .. '\\n' .. event .. '\\n' .. status .. '\\n' .. data)
end
return #KEYS
"""


@dataclass(frozen=True)
class StreamEntry:
    order_id: int
    # The SSE event name: status, location or eta.
    event: str
    # The order's status when the entry was made: who may see a location depends on it.
    status: str
    data: dict


def order_stream_key(order_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:order-stream:{order_id}"


def order_streams_publish(*, entries: list[StreamEntry]) -> int:
    """Append the entries to their orders' streams and publish them; return how many went.
    Called after the change commits: an entry is never about a change that rolls back."""
    if not entries:
        return 0
    history_ms = settings.ORDER_STREAM_HISTORY_SECONDS * 1000
    args: list[str | int] = [int(time.time() * 1000) - history_ms, history_ms]
    for entry in entries:
        args += [entry.event, entry.status, json.dumps(entry.data, separators=(",", ":"))]
    try:
        script = get_redis_connection("default").register_script(_PUBLISH_SCRIPT)
        return script(keys=[order_stream_key(entry.order_id) for entry in entries], args=args)
    except RedisError as exc:
        logger.warning("%d stream entries not published, redis unavailable: %r", len(entries), exc)
        return 0


def order_stream_last_id(order_id: int) -> str | None:
    """The id of the order's latest stream entry ("0-0" when it has none): a stream opened
    now sends every entry after it, those published while it was subscribing too. None
    when Redis is unavailable.

    Read on the request's thread: behind the shared circuit breaker, so that while Redis
    does not answer, streams opening (their clients reconnect every few seconds) do not
    each hold a thread for the socket timeout, starving other requests."""
    if not breaker_closed():
        return None
    try:
        latest = get_redis_connection("default").xrevrange(order_stream_key(order_id), count=1)
    except RedisError as exc:
        breaker_trip(exc, "order stream opening")
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
