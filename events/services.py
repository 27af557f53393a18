"""The writes of events: recording them, handing their webhook deliveries to the broker,
delivering one, and the webhook endpoints themselves."""

import base64
import functools
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest, Now
from django.utils import timezone
from standardwebhooks import Webhook

from events.models import (
    Event,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookPending,
    unknown_event_types,
)
from events.selectors import CURSOR_UNREACHED, RECEIVES, cursor_reached, webhooks_receiving
from events.streams import stream_entries_of, streams_publish
from events.urlcheck import UrlRefused, webhook_post, webhook_url_check
from geomarket.accounts.models import User
from geomarket.api.fields import format_datetime
from geomarket.celery import app as celery_app
from geomarket.errors import Conflict, DomainError, NotFound, ServiceUnavailable
from geomarket.locks import transaction_lock
from geomarket.resend import resend_after, resend_at
from geomarket.sql import CompiledQuery, fetch_all

logger = logging.getLogger(__name__)

WEBHOOK_DELIVER_TASK = "events.webhook_deliver"
# Each transaction that records events notifies the outbox relay (orders.relay) on commit.
EVENTS_CHANNEL = "events_outbox"
# For a writer that records its event in its own statement (a chained INSERT), followed
# by `SELECT type, created_at, merchant_id, order_id, data ...`.
EVENT_INSERT_SQL = "INSERT INTO events_event (type, created_at, merchant_id, order_id, data)"

RETRY_WINDOW = timedelta(hours=24)
RETRY_FIRST_SECONDS = 5
# Below the broker's visibility timeout: Redis hands a task whose countdown outlasts it to
# a second worker.
RETRY_MAX_SECONDS = 1800
DISABLE_AFTER_FAILURES = 20
SECRET_BYTES = 24


def event_record(
    *, type: EventType | str, merchant_id: int, order_id: int | None = None, data: dict[str, Any]
) -> Event:
    """Record an event in the caller's transaction: it exists if and only if the change it
    describes commits, and its webhooks go out after that."""
    return Event.objects.create(
        type=EventType(type),
        created_at=timezone.now(),
        merchant_id=merchant_id,
        order_id=order_id,
        data=data,
    )


def endpoint_wants(*, event_types: list[str], event_type: str) -> bool:
    """An endpoint with no types takes every type."""
    return not event_types or event_type in event_types


def _deliver_later(*, endpoint_id: int, event_id: int, producer, **delivery) -> None:
    """Queue a delivery: a replayed one, or with `attempt`, `first_attempt_at` (ISO) and
    `pending_id`, one owed (`WebhookPending`)."""
    celery_app.tasks[WEBHOOK_DELIVER_TASK].apply_async(
        kwargs={"endpoint_id": endpoint_id, "event_id": event_id, **delivery},
        retry=False,
        producer=producer,
    )


def webhook_deliveries_publish(*, batch: int = 100) -> int:
    """Hand the owed deliveries that are due to the broker, oldest first, and return how
    many went out. Rows are taken with SKIP LOCKED and set due again after the resend
    delay, doubled at each hand-over (`geomarket.resend`), in case the broker loses the
    task: a delivery is owed until its attempt is recorded. A broker error leaves that
    delivery and those after it due at once, for the next round."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            WebhookPending.objects.select_for_update(skip_locked=True)
            .filter(due_at__lte=now)
            .order_by("due_at", "id")[:batch]
        )
        if not due:
            return 0
        sent = 0
        try:
            with celery_app.producer_or_acquire() as producer:
                for pending in due:
                    _deliver_later(
                        endpoint_id=pending.endpoint_id,
                        event_id=pending.event_id,
                        producer=producer,
                        attempt=pending.attempt,
                        first_attempt_at=pending.first_attempt_at.isoformat(),
                        pending_id=pending.pk,
                    )
                    sent += 1
        except Exception as exc:  # whatever failed, the relay sends the rest later
            logger.warning("webhook deliveries not published, broker unavailable: %r", exc)
        # A task that starts before this commits waits for it on the row (`_claim`); one
        # run at once (eagerly) has settled its row already, and is not set due again.
        WebhookPending.objects.filter(
            pk__in=[pending.pk for pending in due[:sent]], due_at__lte=now
        ).update(
            due_at=resend_at(first_sent="handed_at", seconds=settings.WEBHOOK_RESEND_SECONDS),
            handed_at=Coalesce(F("handed_at"), Now()),
        )
    return sent


# One at a time, held until the positions commit: positions then become visible in the
# order they were given, and a reader never sees a later one before an earlier one.
_FEED_POSITIONS_LOCK = "events.feed_positions"
_FEED_POSITIONS_SQL = """
WITH todo AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM (SELECT id FROM events_event WHERE feed_position IS NULL ORDER BY id LIMIT %(batch)s) t
), top AS (
    SELECT COALESCE(max(feed_position), 0) AS position FROM events_event
)
UPDATE events_event e SET feed_position = top.position + todo.n
FROM todo, top
WHERE e.id = todo.id
"""


@functools.cache
def _unplaced_sql() -> str:
    # Compiled once: every feed read runs it, and building it costs more than running it.
    unplaced = Event.objects.filter(feed_position__isnull=True).values_list("pk")[:1]
    return CompiledQuery(unplaced, slots={}).sql


def events_feed_positions_assign(*, batch: int = 1000) -> int:
    """Give the committed events that have none their places in the feed, after every
    place given before; return how many. Events whose transactions are still running are
    not seen, and get theirs once they commit, after these: the feed follows commit
    order. Run by the relay before it publishes and by the feed before it reads."""
    assigned = 0
    # Most reads find every event placed (the relay places them as they commit): one
    # look at the partial index, no lock, nothing written.
    while fetch_all(_unplaced_sql(), []):
        with transaction.atomic(), connection.cursor() as cursor:
            transaction_lock(_FEED_POSITIONS_LOCK)
            cursor.execute(_FEED_POSITIONS_SQL, {"batch": batch})
            assigned += cursor.rowcount
        if cursor.rowcount < batch:
            break
    return assigned


_PUBLISH_LOCK = "events.publish"


def events_publish(*, batch: int = 100) -> int:
    """Record the webhook deliveries pending events owe, one per event and matching endpoint
    that takes events (`webhooks_receiving`), due at once, and mark the events published;
    return how many events.

    Marked in one UPDATE, by one publisher at a time (below). Nothing goes to the broker
    here: the relay hands the deliveries over next
    (`webhook_deliveries_publish`), and each stays owed until its attempt is recorded.
    The status changes among the events go to their orders' live streams
    (`events.streams`) as they are marked.
    """
    # In a transaction of its own, before the lock below.
    events_feed_positions_assign()
    if not Event.objects.filter(published_at__isnull=True).exists():
        return 0
    with transaction.atomic():
        # One publisher at a time (the relay, the beat task, a second relay), from taking
        # its events until their entries are on the streams, which is before the commit
        # that releases the lock. Redis gives an entry its id as it arrives: two
        # publishers at once, each taking the events the other had not, would put an
        # order's later status ahead of an earlier one whose publisher finished last, for
        # good. For the same reason no event is skipped because something (a feed read
        # placing it) holds its row. The events are committed already, so an entry is
        # never about a change that rolls back; a publisher whose own commit fails leaves
        # its events to be published again, in order, an entry twice at worst.
        transaction_lock(_PUBLISH_LOCK)
        pending = list(Event.objects.filter(published_at__isnull=True).order_by("id")[:batch])
        if not pending:
            return 0
        endpoints = list(
            webhooks_receiving()
            .filter(
                Q(merchant_id__isnull=True)
                | Q(merchant_id__in={event.merchant_id for event in pending})
            )
            .values_list("pk", "merchant_id", "event_types")
        )
        now = timezone.now()
        WebhookPending.objects.bulk_create(
            WebhookPending(
                endpoint_id=endpoint_id,
                event_id=event.pk,
                attempt=1,
                first_attempt_at=now,
                due_at=now,
            )
            for event in pending
            for endpoint_id, merchant_id, event_types in endpoints
            if merchant_id in (None, event.merchant_id)
            and endpoint_wants(event_types=event_types, event_type=event.type)
        )
        Event.objects.filter(pk__in=[event.pk for event in pending]).update(published_at=now)
        streams_publish(entries=stream_entries_of(pending))
    return len(pending)


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _checked_url(url: str) -> str:
    """`url`, once its host's name resolves to addresses a delivery may reach: checked
    before the write's transaction, whose connection would otherwise wait on the lookup.
    Nothing is lost by checking early: each delivery checks again."""
    try:
        webhook_url_check(url)
    except UrlRefused as exc:
        raise DomainError(str(exc), field="url") from exc
    return url


def _checked_types(event_types: Iterable[str]) -> list[str]:
    event_types = list(dict.fromkeys(event_types))
    if unknown := unknown_event_types(event_types):
        raise DomainError(f"Unknown event types: {', '.join(unknown)}.", field="event_types")
    return event_types


def webhook_create(
    *,
    created_by: User,
    merchant_id: int | None,
    url: str,
    event_types: list[str],
    is_active: bool = True,
) -> WebhookEndpoint:
    """A new endpoint for a merchant's events (every merchant's with none), with a new
    secret, which only this answer shows. It takes them as long as `created_by`, who may
    read them now (`webhook_merchant`), still may."""
    url = _checked_url(url)
    with transaction.atomic():
        return WebhookEndpoint.objects.create(
            created_by=created_by,
            merchant_id=merchant_id,
            url=url,
            event_types=_checked_types(event_types),
            secret=_secret(),
            is_active=is_active,
        )


def webhook_update(
    *, endpoint: WebhookEndpoint, data: dict[str, Any], actor: User
) -> WebhookEndpoint:
    """Change what `data` names; turning an endpoint on again starts its failures afresh,
    and makes `actor`, who may manage it, the one whose right it takes events by: an
    endpoint whose creator lost the right (an operator gone, an owner who sold the shop)
    is taken over by turning it on, not deleted and made anew with a new secret. One that
    takes events now is not turned on by `is_active: true` (a client sending back the
    whole endpoint, say), and stays its creator's: an operator's edit of an owner's
    endpoint would otherwise make it stop once that operator leaves.

    The endpoint is read again under its row lock, once the input is checked (the URL's
    check resolves its name, before the transaction): a failing delivery may have
    disabled it since the caller read it, and one read while still on would be turned on
    with its `disabled_at` and its failures past the limit kept, so that its next failure
    disables it again."""
    changes: dict[str, Any] = {}
    if "url" in data:
        changes["url"] = _checked_url(data["url"])
    if "event_types" in data:
        changes["event_types"] = _checked_types(data["event_types"])
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(of=("self",))
            .annotate(receives=RECEIVES)
            .filter(pk=endpoint.pk)
            .first()
        )
        if endpoint is None:
            raise NotFound()
        if "is_active" in data:
            if data["is_active"] and not endpoint.is_active:
                changes |= {"failure_count": 0, "disabled_at": None}
            if data["is_active"] and not endpoint.receives:
                changes["created_by"] = actor
            changes["is_active"] = data["is_active"]
        for field, value in changes.items():
            setattr(endpoint, field, value)
        if changes:
            endpoint.save(update_fields=list(changes))
        return endpoint


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


class WebhookNotReceiving(Conflict):
    code = "webhook_not_receiving"
    default_message = (
        "This endpoint takes no events now (turned off, disabled, or its creator may no"
        " longer read them): turn it on (PATCH is_active true) before replaying."
    )


def webhook_replay(*, endpoint: WebhookEndpoint, after_position: int) -> int:
    """Deliver again every event after the feed position `after_position` that the endpoint
    takes; return how many. An endpoint that takes no events now (`webhooks_receiving`)
    is a 409: its deliveries would each be dropped, and the count a promise none keeps. A
    cursor the feed has not reached is a 400, as the feed's own: no cursor it gave. A
    broker outage answers 503: nothing here is kept to send later."""
    if not webhooks_receiving().filter(pk=endpoint.pk).exists():
        raise WebhookNotReceiving()
    events_feed_positions_assign()
    if not cursor_reached(position=after_position):
        raise DomainError(CURSOR_UNREACHED, field="after")
    events = Event.objects.filter(feed_position__gt=after_position)
    if endpoint.merchant_id is not None:
        events = events.filter(merchant_id=endpoint.merchant_id)
    if endpoint.event_types:
        events = events.filter(type__in=endpoint.event_types)
    count = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for event_id in (
                events.order_by("feed_position").values_list("pk", flat=True).iterator()
            ):
                _deliver_later(endpoint_id=endpoint.pk, event_id=event_id, producer=producer)
                count += 1
    except Exception as exc:
        raise ServiceUnavailable(f"The broker is unavailable; {count} events were queued.") from exc
    return count


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: bool
    # Seconds until the next attempt; None for none.
    retry_in: float | None


def webhook_body(event: Event) -> str:
    """The Standard Webhooks payload: type, timestamp and the event as the feed shows it."""
    created_at = format_datetime(event.created_at)
    return json.dumps(
        {
            "type": event.type,
            "timestamp": created_at,
            "data": {
                "id": event.pk,
                "type": event.type,
                "created_at": created_at,
                "merchant_id": event.merchant_id,
                "order_id": event.order_id,
                "data": event.data,
            },
        },
        separators=(",", ":"),
    )


def _retryable(status_code: int | None) -> bool:
    """Timeouts and connection errors (no status), 408, 429 and 5xx are tried again."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def retry_delay(attempt: int) -> float:
    return min(RETRY_FIRST_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)


def _post(endpoint: WebhookEndpoint, event: Event) -> tuple[int | None, str]:
    body = webhook_body(event)
    sent_at = timezone.now()
    headers = {
        "content-type": "application/json",
        "webhook-id": str(event.pk),
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(endpoint.secret).sign(str(event.pk), sent_at, body),
    }
    try:
        status_code = webhook_post(
            endpoint.url,
            content=body.encode(),
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        )
    except (UrlRefused, httpx.InvalidURL) as exc:
        # InvalidURL is no HTTPError. Unrecorded, the delivery would stay owed and be sent
        # again forever, never counted toward disabling.
        return None, f"refused: {exc}"[:500]
    except httpx.TimeoutException:
        return None, "timeout"
    except httpx.HTTPError as exc:
        return None, f"{exc.__class__.__name__}: {exc}"[:500]
    return status_code, ""


def _claim(*, pending_id: int, claimant: str) -> bool:
    """Whether the task `claimant` may deliver its owed delivery: it is still owed, and no
    other task holds it. Held until the resend delay is over, and not sent again before
    that; the broker's second delivery of the same task (its worker died) takes it back at
    once. The row is locked until the transaction that handed the task over commits: the
    claim waits for it."""
    until = resend_after(settings.WEBHOOK_RESEND_SECONDS)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
    if claimant:
        free |= Q(claimed_by=claimant)
    return (
        WebhookPending.objects.filter(free, pk=pending_id).update(
            claimed_until=until,
            claimed_by=claimant,
            due_at=Greatest(F("due_at"), Value(until)),
        )
        == 1
    )


def webhook_deliver_attempt(
    *,
    endpoint_id: int,
    event_id: int,
    attempt: int,
    first_attempt_at: datetime,
    pending_id: int | None = None,
    claimant: str = "",
) -> DeliveryOutcome:
    """POST the event to the endpoint, signed, with no transaction open; record the
    attempt and the endpoint's run of failures (the 20th in a row disables it); when it is
    to be tried again (backoff doubling, for 24 h after the first attempt), record the
    retry (`WebhookPending`) with it, and say when.

    An owed delivery (`pending_id`) is delivered by the first copy of the task that claims
    it (`claimant`, its task id), and is no longer owed once its attempt is recorded:
    another copy, arriving while it is claimed or after, sends nothing. A copy that ran
    past its claim, while another recorded the delivery first, records its attempt but
    leaves any retry to that one."""
    owed = pending_id is not None
    if owed and not _claim(pending_id=pending_id, claimant=claimant):
        return DeliveryOutcome(delivered=False, retry_in=None)
    endpoint = webhooks_receiving().filter(pk=endpoint_id).first()
    event = Event.objects.filter(pk=event_id).first()
    if (
        endpoint is None
        or event is None
        or not endpoint_wants(event_types=endpoint.event_types, event_type=event.type)
    ):
        # An endpoint turned off is owed nothing (turned on again, it starts afresh), nor
        # one changed to take no more events of this type, nor one whose creator may no
        # longer read its events (an operator no longer staff, an owner deactivated or no
        # longer owning its merchant): their retries would otherwise reach it for 24 h.
        if owed:
            WebhookPending.objects.filter(pk=pending_id).delete()
        return DeliveryOutcome(delivered=False, retry_in=None)
    started = time.monotonic()
    status_code, error = _post(endpoint, event)
    duration_ms = round((time.monotonic() - started) * 1000)
    delivered = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        retries_here = not owed or WebhookPending.objects.filter(pk=pending_id).delete()[0] == 1
        WebhookDelivery.objects.create(
            endpoint_id=endpoint_id,
            event_id=event_id,
            attempt=attempt,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
        endpoints = WebhookEndpoint.objects.filter(pk=endpoint_id)
        if delivered:
            endpoints.update(failure_count=0)
            return DeliveryOutcome(delivered=True, retry_in=None)
        endpoints.update(failure_count=F("failure_count") + 1)
        disabled = endpoints.filter(
            is_active=True, failure_count__gte=DISABLE_AFTER_FAILURES
        ).update(is_active=False, disabled_at=timezone.now())
        delay = retry_delay(attempt)
        due_at = timezone.now() + timedelta(seconds=delay)
        if (
            not retries_here
            or not _retryable(status_code)
            or disabled
            or due_at > first_attempt_at + RETRY_WINDOW
        ):
            return DeliveryOutcome(delivered=False, retry_in=None)
        # In the attempt's own transaction: the retry is as durable as its record.
        WebhookPending.objects.create(
            endpoint_id=endpoint_id,
            event_id=event_id,
            attempt=attempt + 1,
            first_attempt_at=first_attempt_at,
            due_at=due_at,
        )
    return DeliveryOutcome(delivered=False, retry_in=delay)
