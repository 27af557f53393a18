"""A worker killed in the middle of a webhook delivery: the delivery goes out again, with
the same webhook-id, from the event the relay published once, and the broker's second copy
of the task is the send its delivery waits for."""

import signal

import pytest

from events.models import WebhookDelivery
from events.services import (
    event_record,
    events_publish,
    webhook_create,
    webhook_deliveries_publish,
)
from geomarket.celery import app as celery_app
from tests.events.receiver import receiver_start
from tests.faults.test_worker_crash import own_broker, start_worker, undelivered, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["own_broker"]

QUEUE = "webhooks"


def test_killed_worker_delivery_goes_out_again(market, own_broker, tmp_path, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    receiver, server = receiver_start()
    # The first request stalls until its worker is gone; the one after it succeeds.
    receiver.answers = [("sleep", 5), 200]
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    workers = []
    worker_settings = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_TIMEOUT_SECONDS": "30"}
    try:
        endpoint = webhook_create(
            created_by=market["owner"],
            merchant_id=market["shop"].pk,
            url=receiver.url,
            event_types=[],
        )
        event = event_record(type="order.placed", merchant_id=market["shop"].pk, data={})
        # The broker is the test's own: its webhooks queue holds this delivery alone.
        assert events_publish() == 1
        assert events_publish() == 0
        assert webhook_deliveries_publish() == 1
        first = start_worker(QUEUE, tmp_path, **worker_settings)
        workers.append(first)
        assert wait_for(lambda: len(receiver.received) == 1, 60), "the delivery never started"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert not WebhookDelivery.objects.exists()
        assert undelivered(QUEUE) == 1

        second = start_worker(QUEUE, tmp_path, **worker_settings)
        workers.append(second)
        assert wait_for(lambda: WebhookDelivery.objects.filter(status_code=200).exists(), 90), (
            "never delivered again"
        )
        assert wait_for(lambda: undelivered(QUEUE) == 0, 90), "never acknowledged"
        second.terminate()
        assert second.wait(timeout=60) == 0
        assert [r.headers["webhook-id"] for r in receiver.received] == [str(event.pk)] * 2
        delivery = WebhookDelivery.objects.get()
        assert (delivery.endpoint_id, delivery.event_id) == (endpoint.pk, event.pk)
    finally:
        celery_app.conf.task_always_eager = saved
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        server.shutdown()
        server.server_close()
