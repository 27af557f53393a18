"""A worker killed in the middle of a task: the task runs again and its effect happens once."""

import email
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from email.message import Message
from pathlib import Path

import pytest
import redis
from django.db import connection

from geomarket.celery import app as celery_app
from orders.models import OrderNotification
from orders.services import outbox_publish
from tests.broker import use_broker
from tests.market import ORDERS, order_body
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(queue: str, mail_dir: Path, **settings: str) -> subprocess.Popen:
    """A worker of `queue` on the test's database and broker; `settings` go to its
    environment."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.test",
        "DATABASE_URL": "postgis://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **connection.settings_dict
        ),
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "EMAIL_BACKEND": "tests.slow_email.SlowFileEmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "PYTHONPATH": str(ROOT),
        **settings,
    }
    return subprocess.Popen(
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
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )


@pytest.fixture
def own_broker(tmp_path):
    """A broker of the test's own. Its workers hand back every message left unacknowledged
    for 3 seconds, whatever its queue: on the shared broker they would run the tasks of
    other workers (another test's, a development stack's) a second time."""
    directory = tmp_path / "broker"
    directory.mkdir()
    broker = RedisServer(directory)
    broker.start()
    saved = celery_app.conf.broker_url
    use_broker(broker.url)
    yield broker
    use_broker(saved)
    broker.stop()


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def undelivered(queue: str) -> int:
    """Messages of `queue` still in the broker: waiting, or taken by a worker and not yet
    acknowledged. Acknowledgement is late, after the task has returned, and Redis keeps
    each message taken in its `unacked` hash until then."""
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    taken = [json.loads(payload) for payload in broker.hvals("unacked")]
    return broker.llen(queue) + sum(1 for _, _, routing_key in taken if routing_key == queue)


def sent_messages(mail_dir: Path) -> list[Message]:
    """Every message the email backend wrote: it appends each one to a log file, followed
    by a line of 79 dashes."""
    separator = "\n" + "-" * 79 + "\n"
    return [
        email.message_from_string(text)
        for log in sorted(mail_dir.glob("*.log"))
        for text in log.read_text().split(separator)
        if text.strip()
    ]


def test_killed_worker_task_runs_again_and_sends_once(market, own_broker, tmp_path, settings):
    queue = f"test-crash-{uuid.uuid4().hex}"
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    workers = []
    try:
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
        order_id = response.json()["id"]
        assert outbox_publish() == 1
        first = start_worker(queue, tmp_path)
        workers.append(first)
        assert wait_for(lambda: (tmp_path / "sending").exists(), 60), "the task never started"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert sent_messages(tmp_path) == []
        assert not OrderNotification.objects.exists()
        assert undelivered(queue) == 1  # the killed worker's message, for another worker

        # Its send need not be slow: nothing is killed during it, and the one worker runs
        # any second delivery after the first (and finds the record).
        second = start_worker(queue, tmp_path, SLOW_EMAIL_SECONDS="0")
        workers.append(second)
        assert wait_for(lambda: OrderNotification.objects.exists(), 90), "never redelivered"
        # Until every delivery of the message has been run to its end and acknowledged, a
        # duplicate could still be sending; then a warm shutdown lets whatever the worker
        # holds finish, and nothing may be left for any later worker.
        assert wait_for(lambda: undelivered(queue) == 0, 90), "never acknowledged"
        second.terminate()
        assert second.wait(timeout=60) == 0
        assert undelivered(queue) == 0
        # What the unique notification row cannot promise: one email, counted where it left.
        sent = sent_messages(tmp_path)
        assert [(m["To"], m["Subject"]) for m in sent] == [
            ("customer@example.org", f"Your order {order_id} at {market['shop'].name} is confirmed")
        ]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
