"""The broker's Redis drops under a worker busy with a task: the worker stays up, and once
the broker is back it takes new tasks without a restart."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from geomarket.celery import app as celery_app
from orders.models import OrderNotification
from orders.services import CONFIRMATION_TASK
from tests.market import ORDERS, order_body
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
# Which of the worker's broker sockets it reads first after a drop varies; the exit needed
# the control channel's before the BRPOP's, so one drop alone may not meet it.
DROPS = 3
pytestmark = pytest.mark.django_db(transaction=True)


class Worker:
    """A prefork worker with remote control on, as deployed: a task runs in the pool
    while the main process keeps a BRPOP and the control channel's subscription open."""

    def __init__(self, *, broker_url: str, queue: str, mail_dir: Path, log_path: Path):
        self.log_path = log_path
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "geomarket.settings.test",
            "DATABASE_URL": "postgis://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
                **connection.settings_dict
            ),
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_BACKEND": "tests.slow_email.SlowFileEmailBackend",
            "EMAIL_FILE_PATH": str(mail_dir),
            "SLOW_EMAIL_SECONDS": "2",
            "PYTHONPATH": str(ROOT),
        }
        with open(log_path, "wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "geomarket", "worker"),
                    *("--pool", "prefork", "--concurrency", "2", "--queues", queue),
                    *("--without-heartbeat", "--without-gossip", "--without-mingle"),
                    *("--loglevel", "INFO"),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_for(self, condition, timeout: float) -> bool:
        """Poll `condition`; fail at once, with the worker's log, if the worker exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the worker exited:\n{self.log_tail()}"
            if condition():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def test_worker_outlives_broker_drops_and_takes_tasks_after(market, tmp_path):
    # No relay runs here: this test sends each confirmation itself, to a broker of its
    # own that it can stop.
    broker = RedisServer(tmp_path)
    broker.start()
    queue = f"test-broker-drop-{uuid.uuid4().hex}"
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    worker = Worker(
        broker_url=broker.url, queue=queue, mail_dir=mail_dir, log_path=tmp_path / "worker.log"
    )
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False

    def confirmed_order() -> int:
        response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
        assert response.status_code == 201
        order_id = response.json()["id"]
        with celery_app.connection_for_write(broker.url) as conn:
            celery_app.send_task(
                CONFIRMATION_TASK, kwargs={"order_id": order_id}, queue=queue, connection=conn
            )
        return order_id

    def notified(order_id: int):
        return lambda: OrderNotification.objects.filter(order_id=order_id).exists()

    try:
        for drop in range(DROPS):
            sending = mail_dir / "sending"
            sending.unlink(missing_ok=True)
            in_flight = confirmed_order()
            assert worker.wait_for(sending.exists, 60), f"drop {drop}: the task never started"

            broker.stop()
            # The task finishes while the broker is away; only its acknowledgement is lost.
            assert worker.wait_for(notified(in_flight), 30), f"drop {drop}: task not finished"
            worker.wait_for(lambda: False, 2)  # the outage goes on; the worker must not exit

            broker.start()
            after = confirmed_order()
            assert worker.wait_for(notified(after), 60), f"drop {drop}: no task taken after"

        assert OrderNotification.objects.count() == 2 * DROPS
        assert len([p for p in mail_dir.iterdir() if p.suffix == ".log"]) == 2 * DROPS
        assert "Unrecoverable error" not in worker.log_tail()
    finally:
        celery_app.conf.task_always_eager = eager
        worker.stop()
        if broker.process.poll() is None:
            broker.stop()
