from datetime import datetime

from celery import shared_task
from django.utils import timezone

from events.services import WEBHOOK_DELIVER_TASK, webhook_deliver_attempt


# Routed to its own queue (CELERY_TASK_ROUTES). Late acknowledgement (the Celery app's
# default) sends a delivery whose worker died again, with the same webhook-id. An owed
# delivery (`pending_id`: events.models.WebhookPending) is sent again by the outbox relay
# until its attempt is recorded, retries included; a replay carries none.
@shared_task(name=WEBHOOK_DELIVER_TASK, ignore_result=True, bind=True)
def webhook_deliver(
    self,
    endpoint_id: int,
    event_id: int,
    attempt: int = 1,
    first_attempt_at: str | None = None,
    pending_id: int | None = None,
) -> bool:
    first = datetime.fromisoformat(first_attempt_at) if first_attempt_at else timezone.now()
    outcome = webhook_deliver_attempt(
        endpoint_id=endpoint_id,
        event_id=event_id,
        attempt=attempt,
        first_attempt_at=first,
        pending_id=pending_id,
        # The same id on the broker's second delivery of this task.
        claimant=self.request.id or "",
    )
    return outcome.delivered
