from celery import shared_task

from events.services import events_publish, webhook_deliveries_publish
from merchants.services import merchant_prep_times_learn
from orders.selectors import PREP_TIME_SAMPLES_SQL
from orders.services import (
    CONFIRMATION_TASK,
    idempotency_keys_prune,
    order_confirmation_send,
    outbox_publish,
)


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
    return outbox_publish() + events_publish() + webhook_deliveries_publish()


@shared_task(name="orders.prune_idempotency_keys", ignore_result=True)
def prune_idempotency_keys() -> int:
    return idempotency_keys_prune()


@shared_task(name="orders.prep_times_learn", ignore_result=True)
def prep_times_learn() -> int:
    """Every merchant's preparation time learned again from its orders' history; the
    number of merchants whose time changed."""
    return len(merchant_prep_times_learn(samples_sql=PREP_TIME_SAMPLES_SQL))
