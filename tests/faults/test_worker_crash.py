"""A worker killed in the middle of a task: the task runs again and its effect happens once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from geomarket.celery import app as celery_app
from orders.models import OrderNotification
from orders.services import outbox_publish
from tests.market import ORDERS, order_body

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def start_worker(queue: str, mail_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.test",
        "DATABASE_URL": "postgis://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **connection.settings_dict
        ),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "EMAIL_BACKEND": "tests.slow_email.SlowFileEmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "PYTHONPATH": str(ROOT),
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


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_killed_worker_task_runs_again_and_sends_once(market, tmp_path, settings):
    queue = f"test-crash-{uuid.uuid4().hex}"
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    workers = []
    try:
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
        outbox_publish()
        first = start_worker(queue, tmp_path)
        workers.append(first)
        assert wait_for(lambda: (tmp_path / "sending").exists(), 60), "the task never started"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert not [p for p in tmp_path.iterdir() if p.suffix == ".log"]
        assert not OrderNotification.objects.exists()

        second = start_worker(queue, tmp_path)
        workers.append(second)
        assert wait_for(lambda: OrderNotification.objects.exists(), 90), "never redelivered"
        assert wait_for(lambda: any(p.suffix == ".log" for p in tmp_path.iterdir()), 30)
        time.sleep(4)  # a second, duplicate delivery would have landed by now
        sent = [p for p in tmp_path.iterdir() if p.suffix == ".log"]
        assert len(sent) == 1
        assert OrderNotification.objects.count() == 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = saved
