"""The Celery application: Redis broker, late acknowledgement, Django settings."""

import os

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")


class BrokerChannel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        """Refuse with a connection error once the channel's transport was detached.

        When the broker drops, Celery's consumer first calls `Connection.collect()`,
        which detaches the transport (`client = None`) even if a channel failed to
        close because its pending BRPOP read hit the dead socket; then it calls
        `Connection.close()`, which closes that channel again. With a task still
        unacknowledged (late acknowledgement), closing requeues it through a new
        connection pool, built from the detached client: an AttributeError, which no
        caller treats as a connection error, so the worker exited ("Unrecoverable
        error"). A connection error is handled wherever it surfaces: the close is
        ignored, a late ack is logged as not sent, and the consumer reconnects. The
        message stays in Redis's unacked index, which hands it back after the
        visibility timeout; the tasks are idempotent.
        """
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.exceptions.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class BrokerTransport(kombu_redis.Transport):
    Channel = BrokerChannel


_VISIBILITY_TIMEOUT = max(1, int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")))

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
    # The broker URL is redis://; this is kombu's Redis transport with the fix above.
    broker_transport=f"{__name__}:BrokerTransport",
    # A task running when the broker drops finishes; only its ack is lost, and Redis
    # redelivers it after the visibility timeout. Cancelling it (Celery 6's default)
    # would cut an email off mid-send for nothing.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # Publishing gives up fast when the broker is down: the outbox keeps the message and
    # the relay retries, so an order request never waits seconds on a dead broker.
    broker_transport_options={
        # How long a task taken by a worker that then died stays invisible before Redis
        # hands it to another worker (late acknowledgement makes it come back at all).
        "visibility_timeout": _VISIBILITY_TIMEOUT,
        # kombu 5.7 looks for such tasks only every interval x throttle seconds (100 by
        # default), whatever the timeout: look every interval, and never less often than
        # the timeout, so a dead worker's task comes back soon after it becomes visible.
        "unacked_restore_interval": min(10, _VISIBILITY_TIMEOUT),
        "unacked_restore_throttle": 1,
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
