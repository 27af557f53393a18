"""The outbox: messages written with the order, published to the broker by the relay,
and sent again until their task has run."""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from geomarket.celery import app as celery_app
from geomarket.resend import resend_after, resend_at
from orders.models import OutboxMessage

logger = logging.getLogger(__name__)


def _send(message: OutboxMessage, *, producer) -> bool:
    """Hand the message to the broker; on failure record why and leave it pending."""
    try:
        celery_app.tasks[message.task_name].apply_async(
            kwargs=message.payload,
            retry=False,
            producer=producer,
            headers={OUTBOX_HEADER: message.pk},
        )
    except Exception as exc:  # whatever failed, the relay sends the message later
        OutboxMessage.objects.filter(pk=message.pk).update(
            attempts=F("attempts") + 1, last_error=f"{exc.__class__.__name__}: {exc}"[:500]
        )
        global _send_failure_logged_at
        now = time.monotonic()
        # The relay tries again on every order committed: one line per outage second, not
        # one per order, is enough to see the broker is down.
        if now - _send_failure_logged_at >= SEND_FAILURE_LOG_SECONDS:
            _send_failure_logged_at = now
            logger.warning(
                "outbox message %s not sent, broker unavailable: %s",
                message.pk,
                exc.__class__.__name__,
            )
        return False
    return True


SEND_FAILURE_LOG_SECONDS = 1.0
_send_failure_logged_at = float("-inf")
# The header that names a task's outbox message, for `outbox_settle`.
OUTBOX_HEADER = "outbox_id"


def _send_due(rows, *, batch: int, **marked) -> int:
    """Send up to `batch` of `rows` (ordered) to the broker and return how many went out.

    Rows are taken with SKIP LOCKED, so concurrent relays never send one message twice at
    the same time. They go out through one producer and are marked in one UPDATE
    (`marked`, the attempt counted, due again after the resend delay, doubled at each
    hand-over: `geomarket.resend`). A broker error
    leaves the message, and those after it, for the next relay run.
    """
    with transaction.atomic():
        due = list(rows.select_for_update(skip_locked=True)[:batch])
        if not due:
            return 0
        sent: list[int] = []
        with celery_app.producer_or_acquire() as producer:
            for message in due:
                if not _send(message, producer=producer):
                    break
                sent.append(message.pk)
        if sent:
            OutboxMessage.objects.filter(pk__in=sent).update(
                attempts=F("attempts") + 1,
                resend_at=resend_at(
                    first_sent="published_at", seconds=settings.OUTBOX_RESEND_SECONDS
                ),
                **marked,
            )
    return len(sent)


def outbox_publish(*, batch: int = 100) -> int:
    """Send pending outbox messages to the broker, oldest first, marked published; return
    how many went out."""
    pending = OutboxMessage.objects.filter(published_at__isnull=True).order_by("id")
    return _send_due(pending, batch=batch, published_at=timezone.now())


def outbox_resend(*, batch: int = 100) -> int:
    """Send again the published messages whose task has not run by their `resend_at`;
    return how many went out."""
    due = OutboxMessage.objects.filter(
        settled_at__isnull=True, resend_at__lte=timezone.now()
    ).order_by("resend_at", "id")
    return _send_due(due, batch=batch)


def _message_id(request) -> int | None:
    """The outbox message a task's request names (`OUTBOX_HEADER`), or None. A worker
    reads the header as an attribute of the request; an eager run keeps it among
    `headers`."""
    message_id = getattr(request, OUTBOX_HEADER, None)
    if message_id is None:
        message_id = (getattr(request, "headers", None) or {}).get(OUTBOX_HEADER)
    return message_id


def outbox_retry_later(*, request, seconds: float) -> int:
    """A task the outbox sent will run again in `seconds` (its own retry, with backoff):
    its message is not sent again before that run has had its resend delay; return how
    many rows that changed."""
    message_id = _message_id(request)
    if message_id is None:
        return 0
    later = resend_after(settings.OUTBOX_RESEND_SECONDS + max(seconds, 0))
    return OutboxMessage.objects.filter(
        pk=message_id, settled_at__isnull=True, resend_at__lt=later
    ).update(resend_at=later)


def outbox_settle(*, request) -> int:
    """Mark settled the outbox message a task's request names, once the task has run to
    its end, succeeded or given up; return how many rows that changed (0 for a task no
    message sent)."""
    message_id = _message_id(request)
    if message_id is None:
        return 0
    return OutboxMessage.objects.filter(pk=message_id, settled_at__isnull=True).update(
        settled_at=timezone.now()
    )
