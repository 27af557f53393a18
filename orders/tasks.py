import logging
from datetime import datetime

from celery import shared_task
from celery.signals import task_failure, task_retry, task_success
from django.db import DatabaseError
from django.utils import timezone

from merchants.services import merchant_prep_times_learn
from orders.relay import PUBLISHERS
from orders.selectors import PREP_TIME_SAMPLES_SQL
from orders.services import (
    CONFIRMATION_TASK,
    idempotency_keys_prune,
    order_confirmation_send,
    outbox_retry_later,
    outbox_settle,
)

logger = logging.getLogger(__name__)


@shared_task(
    name=CONFIRMATION_TASK,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    # Nobody reads the result; not storing it keeps sending independent of the result store.
    ignore_result=True,
)
def send_order_confirmation(order_id: int) -> bool:
    return order_confirmation_send(order_id=order_id)


@shared_task(name="orders.outbox_relay", ignore_result=True)
def outbox_relay() -> int:
    return sum(publish() for publish in PUBLISHERS)


@shared_task(name="orders.prune_idempotency_keys", ignore_result=True)
def prune_idempotency_keys() -> int:
    return idempotency_keys_prune()


@shared_task(name="orders.prep_times_learn", ignore_result=True)
def prep_times_learn() -> int:
    """Every merchant's preparation time learned again from its orders' history; the
    number of merchants whose time changed."""
    return len(merchant_prep_times_learn(samples_sql=PREP_TIME_SAMPLES_SQL))


@task_success.connect
@task_failure.connect
def outbox_task_ended(sender=None, **_) -> None:
    """A task the outbox sent has run to its end (succeeded, or failed past its retries):
    its message is settled and not sent again. A retry is neither."""
    try:
        outbox_settle(request=sender.request)
    except DatabaseError as exc:  # left unsettled: sent again later, and idempotent
        logger.warning("outbox message not settled: %r", exc)


@task_retry.connect
def outbox_task_retrying(sender=None, request=None, reason=None, **_) -> None:
    """A task the outbox sent failed and retries itself later: not sent again before then.
    Sent again at once, each copy would start a chain of retries of its own."""
    when = getattr(reason, "when", None)
    if isinstance(when, datetime):
        seconds = (when - timezone.now()).total_seconds()
    else:
        seconds = float(when or 0)
    try:
        outbox_retry_later(request=request, seconds=seconds)
    except DatabaseError as exc:
        logger.warning("outbox message not put off: %r", exc)
