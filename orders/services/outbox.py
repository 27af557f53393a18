"""The outbox: messages written with the order, published to the broker by the relay."""

import logging
import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from geomarket.celery import app as celery_app
from orders.models import OutboxMessage

logger = logging.getLogger(__name__)


def _send(message: OutboxMessage, *, producer) -> bool:
    """Hand the message to the broker; on failure record why and leave it pending."""
    try:
        celery_app.tasks[message.task_name].apply_async(
            kwargs=message.payload, retry=False, producer=producer
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


def outbox_publish(*, batch: int = 100) -> int:
    """Send pending outbox messages to the broker; return how many went out.

    Rows are taken with SKIP LOCKED, so concurrent relays never send one message twice
    at the same time. They go out through one producer and are marked sent in one
    UPDATE. A broker error leaves the message, and those after it, pending for the next
    relay run.
    """
    with transaction.atomic():
        pending = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(published_at__isnull=True)
            .order_by("id")[:batch]
        )
        if not pending:
            return 0
        sent: list[int] = []
        with celery_app.producer_or_acquire() as producer:
            for message in pending:
                if not _send(message, producer=producer):
                    break
                sent.append(message.pk)
        if sent:
            OutboxMessage.objects.filter(pk__in=sent).update(
                published_at=timezone.now(), attempts=F("attempts") + 1
            )
    return len(sent)
