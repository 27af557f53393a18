import pytest
import redis
from django.test import override_settings

from bench.common.processes import free_port as closed_port
from geomarket.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_everything_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def test_healthz_names_the_cache_when_redis_is_unreachable(client, settings):
    dead_cache = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    with override_settings(CACHES=dead_cache):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"] == {"database": "ok", "cache": "error", "broker": "ok"}


def test_healthz_names_the_broker_when_it_is_unreachable(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "error"}


def test_healthz_checks_the_broker_over_a_kept_connection(client, monkeypatch):
    """A load balancer asks every few seconds: each answer must not open a new connection
    to the broker."""
    assert client.get("/healthz").status_code == 200
    broker_port = redis.Redis.from_url(
        celery_app.conf.broker_url
    ).connection_pool.connection_kwargs["port"]
    opened = []
    open_socket = redis.connection.Connection._connect

    def counted(self):
        opened.append(self.port)
        return open_socket(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counted)
    for _ in range(3):
        assert client.get("/healthz").json()["checks"]["broker"] == "ok"
    assert broker_port not in opened
