"""The reads of events: the feed, its cursor, and the webhook endpoints a user sees."""

import base64
import re

from django.db.models import QuerySet

from events.models import Event, WebhookDelivery, WebhookEndpoint
from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.errors import DomainError, Forbidden

# A cursor is the last event's feed position as 8 bytes, URL-safe base64 without padding: always 11
# characters, the last of them one of 16 (its two low bits are padding), so the schema can
# state exactly which strings are cursors.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$"
_MAX_ID = 2**63 - 1


def cursor_encode(position: int) -> str:
    return base64.urlsafe_b64encode(position.to_bytes(8, "big")).decode().rstrip("=")


def cursor_decode(cursor: str, *, field: str = "after") -> int:
    """The feed position a cursor stands for; 400 for a string that is not a cursor. One
    beyond every position (past bigint) is after every event."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise DomainError("Not a cursor of this feed.", field=field)
    return min(int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big"), _MAX_ID)


def events_scope(user) -> int | None:
    """The merchant whose events `user` may read, None for all of them (operators);
    403 for anyone else."""
    if is_operator(user):
        return None
    merchant_id = user_merchant_id(user)
    if merchant_id is None:
        raise Forbidden("Only merchant owners and operators may read events.")
    return merchant_id


def events_feed(
    *, user, after_position: int = 0, types: list[str] | None = None, limit: int = 100
) -> list[Event]:
    """The events `user` may read after the feed position `after_position`, in the order
    they committed (`events_feed_positions_assign` gives the positions)."""
    merchant_id = events_scope(user)
    events = Event.objects.filter(feed_position__gt=after_position)
    if merchant_id is not None:
        events = events.filter(merchant_id=merchant_id)
    if types:
        events = events.filter(type__in=types)
    return list(events.order_by("feed_position")[:limit])


def webhooks_visible_to(user) -> QuerySet[WebhookEndpoint]:
    merchant_id = events_scope(user)
    endpoints = WebhookEndpoint.objects.order_by("id")
    return endpoints if merchant_id is None else endpoints.filter(merchant_id=merchant_id)


def webhook_deliveries_recent(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's attempts, latest first."""
    return endpoint.deliveries.order_by("-id")
