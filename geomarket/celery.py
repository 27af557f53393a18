"""The Celery application: Redis broker, late acknowledgement, Django settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")

app = Celery("geomarket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Tasks are idempotent, so a task whose worker died is safer run twice than lost.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    # Publishing gives up fast when the broker is down: the outbox keeps the message and
    # the relay retries, so an order request never waits seconds on a dead broker.
    broker_transport_options={
        # How long a task taken by a worker that then died stays invisible before Redis
        # hands it to another worker (late acknowledgement makes it come back at all).
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    broker_connection_timeout=2,
    task_default_queue="geomarket",
)
app.autodiscover_tasks()


@app.task(name="geomarket.ping")
def ping() -> str:
    return "pong"
