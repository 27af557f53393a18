"""Redis stops and comes back: the service degrades, says so, and recovers by itself."""

import logging
import time

import pytest
from django_redis import get_redis_connection

from tests import factories
from tests.redis_server import RedisServer

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/products/nearby/"


@pytest.fixture
def redis_server(tmp_path, settings):
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    settings.CACHE_BREAKER_SECONDS = 0.5
    yield server
    if server.process.poll() is None:
        server.stop()


def test_search_survives_a_redis_outage_and_recovers(redis_server, client, caplog, settings):
    shop = factories.merchant()
    factories.stock(product=factories.product(merchant=shop, title="Tea Leaves"), quantity=3)
    near = {"lat": shop.location.y, "lng": shop.location.x}
    truth = client.get(NEARBY, near).json()
    assert client.get(NEARBY, near)["X-Cache"] == "HIT"
    assert client.get("/healthz").status_code == 200

    redis_server.stop()
    with caplog.at_level(logging.WARNING):
        during = client.get(NEARBY, near)
        search = client.get("/api/v1/search/products/", {"q": "tea"})
        suggest = [client.get("/api/v1/search/suggest/", {"q": "tea"}) for _ in range(25)]
        health = client.get("/healthz")
    assert during.status_code == 200
    assert during["X-Cache"] == "MISS"
    assert during.json() == truth
    assert search.json()["count"] == 1
    assert all(r.status_code == 200 for r in suggest)  # the limiter fails open
    assert suggest[0].json()["suggestions"] == ["Tea Leaves"]
    assert health.status_code == 503
    assert health.json()["checks"]["cache"] == "error"
    assert "redis unavailable" in caplog.text
    assert "failing open" in caplog.text

    redis_server.start()
    time.sleep(0.6)  # the breaker's cooldown
    assert client.get("/healthz").status_code == 200
    assert client.get(NEARBY, near)["X-Cache"] == "MISS"
    assert client.get(NEARBY, near)["X-Cache"] == "HIT"
    limited = client.get("/api/v1/search/suggest/", {"q": "tea"})
    assert limited["X-RateLimit-Remaining"] == "19"
    assert get_redis_connection("default").ping()
