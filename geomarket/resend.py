"""When a task handed to the broker, and not yet seen to run, goes out again.

Redis's transport loses a task a worker took off the queue (`BRPOP`) if the broker stops
before the worker files it as unacknowledged, so the outboxes (orders' messages, webhook
deliveries) hand a task over again when it has not run after a while. A task that was only
waiting in a long queue then runs more than once (the tasks are idempotent), and each copy
lengthens the queue: a fixed delay would multiply the copies for as long as the queue
waits longer than the delay. So the delay doubles from one hand-over to the next.
"""

from datetime import datetime, timedelta

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.db.models.functions import Greatest, Now
from django.utils import timezone


def resend_after(seconds: float) -> datetime:
    """`seconds` from now: how long a task taken by a worker, or putting itself off,
    holds its message before it may be handed over again."""
    return timezone.now() + timedelta(seconds=seconds)


def resend_at(*, first_sent: str, seconds: int) -> ExpressionWrapper:
    """An UPDATE's value for the time a task handed over now goes out again: after
    `seconds`, or after as long as it has been out since the field `first_sent` (NULL
    when this is its first hand-over), whichever is longer."""
    out_since = ExpressionWrapper(Now() - F(first_sent), output_field=DurationField())
    return ExpressionWrapper(
        Now() + Greatest(Value(timedelta(seconds=seconds)), out_since),
        output_field=DateTimeField(),
    )
