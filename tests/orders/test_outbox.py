"""Confirmations go through an outbox: a broker outage delays them, never loses them."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
import redis
from celery.app.task import Context
from celery.exceptions import Retry
from celery.signals import task_retry
from django.conf import settings
from django.core import mail
from django.db import connection
from django.utils import timezone

from bench.common.processes import free_port as closed_port
from events.services import EVENTS_CHANNEL
from geomarket.celery import app as celery_app
from orders.models import Order, OrderNotification, OutboxMessage
from orders.relay import CHANNEL as relay_channel
from orders.relay import relay_outbox
from orders.services import (
    CONFIRMATION_TASK,
    order_confirmation_send,
    outbox_publish,
    outbox_resend,
)
from tests.broker import use_broker
from tests.market import ORDERS, order_body
from tests.threads import Worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def real_broker():
    """Tasks leave through the broker (not eagerly) on a queue of this test's own."""
    saved = (
        celery_app.conf.broker_url,
        celery_app.conf.task_always_eager,
        celery_app.conf.task_default_queue,
    )
    queue = f"test-outbox-{uuid.uuid4().hex}"
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    yield queue
    use_broker(saved[0])
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved[1:]


@pytest.mark.django_db
def test_confirmed_order_emails_the_customer_once(market, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order_id = (
            market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).json()["id"]
        )
    # The web request publishes nothing itself: the relay does.
    assert mail.outbox == []
    assert outbox_publish() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["customer@example.org"]
    assert str(order_id) in mail.outbox[0].subject
    message = OutboxMessage.objects.get()
    assert message.published_at is not None
    # Its task has run: settled, never sent again.
    assert message.settled_at is not None
    OutboxMessage.objects.update(resend_at=timezone.now() - timedelta(seconds=1))
    assert outbox_resend() == 0
    # the task delivered again (a redelivery after a worker died) sends nothing new
    assert order_confirmation_send(order_id=order_id) is False
    assert len(mail.outbox) == 1
    assert OrderNotification.objects.filter(order_id=order_id).count() == 1


@pytest.mark.django_db
def test_rejected_orders_send_nothing(market, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        market["client"].post(ORDERS, order_body(market, (market["bread"], 99)))
    assert mail.outbox == []
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_broker_outage_delays_the_confirmation_and_loses_nothing(market, real_broker):
    working_broker = celery_app.conf.broker_url
    use_broker(f"redis://127.0.0.1:{closed_port()}/0")
    response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert response.status_code == 201
    order = Order.objects.get(pk=response.json()["id"])
    message = OutboxMessage.objects.get()
    # The request left the message to the relay: it made no attempt at the broker.
    assert (message.published_at, message.attempts) == (None, 0)
    assert outbox_publish() == 0  # the relay while the broker is still down
    message.refresh_from_db()
    assert message.published_at is None
    assert message.attempts == 1
    assert "Error" in message.last_error

    use_broker(working_broker)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "geomarket",
            "worker",
            "--pool",
            "solo",
            "--queues",
            real_broker,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "geomarket.settings.test",
            "DATABASE_URL": "postgis://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
                **connection.settings_dict
            ),
        },
    )
    try:
        assert outbox_publish() == 1
        assert outbox_publish() == 0  # published once, never again
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and not OrderNotification.objects.filter(order=order).exists()
        ):
            time.sleep(0.2)
        assert OrderNotification.objects.filter(order=order, kind="confirmation").count() == 1
        # The worker settles the message once the task has run: it is not sent again.
        while time.monotonic() < deadline and not _settled(message):
            time.sleep(0.2)
        assert _settled(message)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    message.refresh_from_db()
    assert message.published_at is not None


@pytest.mark.django_db
def test_each_hand_over_waits_as_long_as_the_message_has_been_out(market, real_broker):
    """A queue that waits longer than the resend delay would get a copy per delay and
    message: the delay doubles instead (published 1,000 s ago, the next is 1,000 s off)."""
    message = OutboxMessage.objects.create(
        task_name=CONFIRMATION_TASK,
        payload={"order_id": 0},
        published_at=timezone.now() - timedelta(seconds=1000),
        resend_at=timezone.now() - timedelta(seconds=1),
    )
    assert outbox_resend() == 1
    redis.Redis.from_url(celery_app.conf.broker_url).delete(real_broker)
    message.refresh_from_db()
    wait = (message.resend_at - timezone.now()).total_seconds()
    assert 1000 - 5 < wait <= 1000 + 5
    assert outbox_resend() == 0


def _settled(message: OutboxMessage) -> bool:
    message.refresh_from_db()
    return message.settled_at is not None


@pytest.mark.django_db
def test_a_confirmation_the_broker_loses_is_sent_again_until_it_has_run(market, real_broker):
    """Redis's transport drops a task taken off the queue by a worker whose broker stops
    before the worker files it as unacknowledged: the message stays unsettled and is sent
    again once `OUTBOX_RESEND_SECONDS` have passed; once its task has run, never again."""
    response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    order_id = response.json()["id"]
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    assert outbox_publish() == 1
    lost = json.loads(broker.lpop(real_broker))
    message = OutboxMessage.objects.get()
    assert lost["headers"]["outbox_id"] == message.pk
    wait = (message.resend_at - timezone.now()).total_seconds()
    assert settings.OUTBOX_RESEND_SECONDS - 5 < wait <= settings.OUTBOX_RESEND_SECONDS
    # Not yet due.
    assert outbox_resend() == 0
    OutboxMessage.objects.update(resend_at=timezone.now() - timedelta(seconds=1))
    assert outbox_resend() == 1
    again = json.loads(broker.lpop(real_broker))
    assert again["headers"]["outbox_id"] == message.pk
    assert again["headers"]["task"] == lost["headers"]["task"] == CONFIRMATION_TASK
    message.refresh_from_db()
    assert message.attempts == 2
    assert not _settled(message)
    # Run in-process (the real worker of the outage test above reads the header too).
    celery_app.tasks[CONFIRMATION_TASK].apply(
        kwargs={"order_id": order_id}, headers={"outbox_id": message.pk}
    )
    assert OrderNotification.objects.filter(order_id=order_id).count() == 1
    assert _settled(message)
    OutboxMessage.objects.update(resend_at=timezone.now() - timedelta(seconds=1))
    assert outbox_resend() == 0


@celery_app.task(name="tests.outbox.gives_up")
def _gives_up() -> None:
    raise ValueError("a task past its retries")


@pytest.mark.django_db
def test_a_task_that_gives_up_is_settled_too(market):
    """Its failure is recorded where the task records it; sending it again every few
    minutes, forever, would only fail again."""
    message = OutboxMessage.objects.create(
        task_name="tests.outbox.gives_up", published_at=timezone.now(), resend_at=timezone.now()
    )
    # As a worker runs it: the error is recorded, not raised to the caller.
    result = _gives_up.apply(headers={"outbox_id": message.pk}, throw=False)
    assert result.failed()
    assert _settled(message)
    assert outbox_resend() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("when", [600, "eta"])
def test_a_task_retrying_itself_is_not_sent_again_before_its_retry(market, when):
    """As a worker's retry signals it (an eager retry runs again at once, so the signal is
    sent here as the worker sends it): with a countdown, or an `eta`."""
    message = OutboxMessage.objects.create(
        task_name=CONFIRMATION_TASK, published_at=timezone.now(), resend_at=timezone.now()
    )
    if when == "eta":
        when = timezone.now() + timedelta(seconds=600)
    task_retry.send(
        sender=celery_app.tasks[CONFIRMATION_TASK],
        request=Context(headers={"outbox_id": message.pk}),
        reason=Retry(when=when),
    )
    message.refresh_from_db()
    assert message.settled_at is None
    wait = (message.resend_at - timezone.now()).total_seconds()
    assert 600 + settings.OUTBOX_RESEND_SECONDS - 5 < wait <= 600 + settings.OUTBOX_RESEND_SECONDS
    assert outbox_resend() == 0


@pytest.mark.django_db
def test_a_batch_goes_out_through_one_producer_and_one_update(
    market, real_broker, django_assert_num_queries
):
    for _ in range(3):
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
    assert OutboxMessage.objects.filter(published_at__isnull=True).count() == 3
    # Savepoint, the locking read, the one UPDATE, release.
    with django_assert_num_queries(4):
        assert outbox_publish() == 3
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    assert broker.llen(real_broker) == 3
    broker.delete(real_broker)


@pytest.mark.django_db(transaction=True)
def test_the_relay_publishes_as_soon_as_the_order_commits(market, monkeypatch):
    from orders import relay as relay_module

    listening: list[str] = []
    swept = threading.Event()
    open_listener, publish_pending = relay_module._listener, relay_module._publish_pending

    def listener():
        opened = open_listener()
        rows = opened.execute("SELECT pg_listening_channels()").fetchall()
        listening.extend(channel for (channel,) in rows)
        return opened

    def sweep():
        sent = publish_pending()
        swept.set()
        return sent

    monkeypatch.setattr(relay_module, "_listener", listener)
    monkeypatch.setattr(relay_module, "_publish_pending", sweep)
    stop = threading.Event()
    # A sweep far longer than the test: only the commit's notification can wake the relay.
    relay = Worker(partial(relay_outbox, sweep_seconds=120, stop=stop))
    relay.start()
    try:
        # The order is placed once the relay listens and its first sweep is over, so no
        # sweep can publish it.
        assert swept.wait(30), "the relay never swept"
        assert sorted(listening) == sorted([relay_channel, EVENTS_CHANNEL])
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
        # The task runs as the relay sends it, and the relay marks the message sent in the
        # same transaction after that: wait for both.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            mail.outbox and OutboxMessage.objects.get().published_at is not None
        ):
            time.sleep(0.05)
        assert len(mail.outbox) == 1
        assert str(response.json()["id"]) in mail.outbox[0].subject
        assert OutboxMessage.objects.get().published_at is not None
    finally:
        stop.set()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [relay_channel])
        relay.outcome(timeout=10)


@pytest.mark.django_db
def test_a_broker_outage_is_logged_once_an_interval_not_once_per_order(
    market, real_broker, caplog, monkeypatch
):
    from orders.services import outbox

    monkeypatch.setattr(outbox, "_send_failure_logged_at", float("-inf"))
    # However slowly the refused attempts go, they all fall in one logging interval.
    monkeypatch.setattr(outbox, "SEND_FAILURE_LOG_SECONDS", 600.0)
    use_broker(f"redis://127.0.0.1:{closed_port()}/0")
    for _ in range(3):
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
    with caplog.at_level("WARNING", logger=outbox.logger.name):
        for _ in range(3):
            assert outbox_publish() == 0
    warnings = [r for r in caplog.records if "broker unavailable" in r.getMessage()]
    assert len(warnings) == 1
    # Every failed attempt is still recorded on its message.
    assert OutboxMessage.objects.order_by("id").first().attempts == 3
