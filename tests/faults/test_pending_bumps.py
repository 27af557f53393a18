"""A write whose process cannot reach Redis leaves no other process serving the answers it
made stale: the bump is recorded in the database and done as soon as Redis answers.

Each "process" here is a circuit breaker and a cache connection of its own: the writer's
Redis fails, the reader's does not."""

import pytest
from django.test import override_settings
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError

from bench.common.processes import free_port
from catalog.services import product_update
from geomarket import answer_cache
from geomarket.cache.models import PendingBump
from geomarket.cache.tasks import pending_bumps_retry
from tests import factories

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/products/nearby/"


@pytest.fixture
def shop():
    merchant = factories.merchant()
    item = factories.product(merchant=merchant, title="Oat Milk")
    factories.stock(product=item, quantity=4)
    return {"item": item, "near": {"lat": merchant.location.y, "lng": merchant.location.x}}


class Process:
    """One server process's state, its breaker, in force inside `with`."""

    def __init__(self, monkeypatch):
        self.breaker = answer_cache._Breaker()
        self._monkeypatch = monkeypatch

    def __enter__(self):
        self._monkeypatch.setattr(answer_cache, "_breaker", self.breaker)
        return self

    def __exit__(self, *exc):
        return False


def catalog_version() -> int:
    return int(get_redis_connection("default").get(answer_cache.version_key("catalog")) or 0)


def dead_redis(settings):
    return override_settings(
        CACHES={
            "default": {
                **settings.CACHES["default"],
                "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            }
        }
    )


def title_seen(api_client, shop) -> tuple[str, str]:
    response = api_client.get(NEARBY, shop["near"])
    assert response.status_code == 200
    return response.json()["results"][0]["product"]["title"], response["X-Cache"]


def test_a_write_while_the_breaker_is_open_is_recorded_with_it_and_bumped_by_the_retrier(
    api_client, shop, monkeypatch, django_capture_on_commit_callbacks
):
    reader, writer = Process(monkeypatch), Process(monkeypatch)
    with reader:
        title_seen(api_client, shop)
        assert title_seen(api_client, shop) == ("Oat Milk", "HIT")
    before = catalog_version()
    with writer:
        writer.breaker.trip(RedisConnectionError("refused"), "a request")
        with django_capture_on_commit_callbacks(execute=True):
            product_update(product=shop["item"], data={"title": "Soy Milk"})
    assert list(PendingBump.objects.values_list("namespace", flat=True)) == ["catalog"]
    assert catalog_version() == before
    with reader:
        # Until the retrier runs, the reader's Redis still holds the answer.
        assert title_seen(api_client, shop) == ("Oat Milk", "HIT")
        assert pending_bumps_retry.delay().get() == 1
        assert not PendingBump.objects.exists()
        assert catalog_version() > before
        assert title_seen(api_client, shop) == ("Soy Milk", "MISS")


def test_a_bump_that_fails_after_commit_is_recorded_and_bumped_by_the_retrier(
    api_client, shop, monkeypatch, settings, django_capture_on_commit_callbacks
):
    reader, writer = Process(monkeypatch), Process(monkeypatch)
    with reader:
        title_seen(api_client, shop)
    before = catalog_version()
    with writer:
        with django_capture_on_commit_callbacks() as callbacks:
            product_update(product=shop["item"], data={"title": "Soy Milk"})
        # The write began with Redis up; it is gone by the time the write commits.
        assert writer.breaker.allows()
        assert not PendingBump.objects.exists()
        with dead_redis(settings):
            for callback in callbacks:
                callback()
        assert not writer.breaker.allows()
    assert list(PendingBump.objects.values_list("namespace", flat=True)) == ["catalog"]
    assert catalog_version() == before
    with reader:
        assert title_seen(api_client, shop) == ("Oat Milk", "HIT")
        assert pending_bumps_retry.delay().get() == 1
        assert catalog_version() > before
        assert title_seen(api_client, shop) == ("Soy Milk", "MISS")
    assert not PendingBump.objects.exists()


def test_the_retrier_keeps_the_record_while_redis_is_down(
    shop, monkeypatch, settings, django_capture_on_commit_callbacks
):
    with Process(monkeypatch) as writer:
        writer.breaker.trip(RedisConnectionError("refused"), "a request")
        with django_capture_on_commit_callbacks(execute=True):
            product_update(product=shop["item"], data={"title": "Soy Milk"})
    with Process(monkeypatch), dead_redis(settings):
        assert pending_bumps_retry.delay().get() == 0
    assert PendingBump.objects.count() == 1


def test_the_writer_bumps_the_records_when_its_redis_comes_back(
    api_client, shop, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.CACHE_BREAKER_SECONDS = 0
    reader, writer = Process(monkeypatch), Process(monkeypatch)
    with reader:
        title_seen(api_client, shop)
    with writer:
        with dead_redis(settings):
            title_seen(api_client, shop)  # trips the writer's breaker
        assert writer.breaker.needs_full_bump
        with django_capture_on_commit_callbacks() as callbacks:
            product_update(product=shop["item"], data={"title": "Soy Milk"})
        with dead_redis(settings):
            for callback in callbacks:
                callback()
        assert PendingBump.objects.count() == 1
        # The writer's next use of Redis, which answers again, is its recovery.
        assert title_seen(api_client, shop) == ("Soy Milk", "MISS")
    assert not PendingBump.objects.exists()
    with reader:
        assert title_seen(api_client, shop) == ("Soy Milk", "HIT")


def test_beat_retries_pending_bumps_every_second(settings):
    # The README's bound on staleness counts on it.
    entry = settings.CELERY_BEAT_SCHEDULE["pending-version-bumps"]
    assert entry["task"] == pending_bumps_retry.name
    assert entry["schedule"] == 1.0
