from datetime import datetime

from celery import shared_task
from django.utils import timezone

from events.services import WEBHOOK_DELIVER_TASK, webhook_deliver_attempt


# Routed to its own queue (CELERY_TASK_ROUTES). Late acknowledgement (the Celery app's
# default) sends a delivery whose worker died again, with the same webhook-id. A retry is
# recorded by the attempt and queued by the outbox relay when due (`WebhookRetry`).
@shared_task(name=WEBHOOK_DELIVER_TASK, ignore_result=True)
def webhook_deliver(
    endpoint_id: int, event_id: int, attempt: int = 1, first_attempt_at: str | None = None
) -> bool:
    first = datetime.fromisoformat(first_attempt_at) if first_attempt_at else timezone.now()
    outcome = webhook_deliver_attempt(
        endpoint_id=endpoint_id, event_id=event_id, attempt=attempt, first_attempt_at=first
    )
    return outcome.delivered
