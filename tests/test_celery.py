"""A task travels through the real Redis broker to a real worker process."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from geomarket.celery import app as celery_app
from geomarket.celery import ping

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def worker_queue():
    queue = f"test-{uuid.uuid4().hex}"
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
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
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "geomarket.settings.test"},
    )
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager = eager
        worker.terminate()
        worker.wait(timeout=30)


def test_task_runs_in_a_real_worker_over_the_redis_broker(worker_queue):
    result = ping.apply_async(queue=worker_queue)
    # The flag is global to the process: an eager task run by an earlier test sets it.
    assert result.get(timeout=60, disable_sync_subtasks=False) == "pong"
    assert result.successful()
