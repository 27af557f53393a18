"""The reads of events: the feed, its cursor, and the webhook endpoints a user sees."""

import base64
import binascii

from django.db.models import QuerySet

from events.models import Event, WebhookDelivery, WebhookEndpoint
from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.errors import DomainError, Forbidden

CURSOR_PREFIX = "e:"


def cursor_encode(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{event_id}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, field: str = "after") -> int:
    """The event id a cursor stands for; 400 for one this API did not give out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(CURSOR_PREFIX) or not text[len(CURSOR_PREFIX) :].isdigit():
            raise ValueError(text)
        return int(text[len(CURSOR_PREFIX) :])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise DomainError("Not a cursor of this feed.", field=field) from exc


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
    *, user, after_id: int = 0, types: list[str] | None = None, limit: int = 100
) -> list[Event]:
    """The events `user` may read after `after_id`, oldest first."""
    merchant_id = events_scope(user)
    events = Event.objects.filter(pk__gt=after_id)
    if merchant_id is not None:
        events = events.filter(merchant_id=merchant_id)
    if types:
        events = events.filter(type__in=types)
    return list(events.order_by("id")[:limit])


def webhooks_visible_to(user) -> QuerySet[WebhookEndpoint]:
    merchant_id = events_scope(user)
    endpoints = WebhookEndpoint.objects.order_by("id")
    return endpoints if merchant_id is None else endpoints.filter(merchant_id=merchant_id)


def webhook_deliveries_recent(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """The endpoint's attempts, latest first."""
    return endpoint.deliveries.order_by("-id")
