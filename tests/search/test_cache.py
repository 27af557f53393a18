"""Cached answers: HIT/MISS, never stale after a committed write, and Redis optional."""

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_redis import get_redis_connection

from bench.common.processes import free_port as closed_port
from catalog import stored_json
from catalog.shapes import PRODUCT
from geomarket.answer_cache import Namespace, version_key, versions_bump
from geomarket.shapes import Shape
from merchants import delivering_sql
from merchants.shapes import MERCHANT_SHOWN
from tests import factories

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/products/nearby/"


@pytest.fixture
def shop(as_user):
    owner = factories.user()
    merchant = factories.merchant(owner=owner)
    item = factories.product(merchant=merchant, title="Oat Milk", price="1.80")
    row = factories.stock(product=item, quantity=4)
    factories.zone(merchant=merchant)
    return {"owner": as_user(owner), "merchant": merchant, "item": item, "stock": row}


def near(shop):
    return {"lat": shop["merchant"].location.y, "lng": shop["merchant"].location.x}


def test_second_identical_query_is_a_hit(api_client, shop):
    first = api_client.get(NEARBY, near(shop))
    second = api_client.get(NEARBY, near(shop))
    assert first["X-Cache"] == "MISS"
    assert second["X-Cache"] == "HIT"
    assert first.content == second.content
    other = api_client.get(NEARBY, {**near(shop), "radius": 100})
    assert other["X-Cache"] == "MISS"


def test_stock_adjustment_is_visible_at_once(api_client, shop, django_capture_on_commit_callbacks):
    api_client.get(NEARBY, near(shop))
    with django_capture_on_commit_callbacks(execute=True):
        response = shop["owner"].post(
            f"/api/v1/inventory/{shop['stock'].pk}/adjust/", {"delta": -3, "reason": "sold"}
        )
    assert response.status_code == 200
    after = api_client.get(NEARBY, near(shop))
    assert after["X-Cache"] == "MISS"
    assert after.json()["results"][0]["quantity"] == 1


def test_product_edit_is_visible_in_every_cached_search(
    api_client, shop, django_capture_on_commit_callbacks
):
    item = shop["item"]
    api_client.get(NEARBY, near(shop))
    api_client.get("/api/v1/search/products/", {"q": "milk"})
    api_client.get("/api/v1/search/suggest/", {"q": "oat"})
    with django_capture_on_commit_callbacks(execute=True):
        shop["owner"].patch(f"/api/v1/products/{item.pk}/", {"title": "Soy Milk"})
    nearby = api_client.get(NEARBY, near(shop))
    assert nearby.json()["results"][0]["product"]["title"] == "Soy Milk"
    search = api_client.get("/api/v1/search/products/", {"q": "milk"})
    assert search["X-Cache"] == "MISS"
    assert search.json()["results"][0]["title"] == "Soy Milk"
    assert api_client.get("/api/v1/search/suggest/", {"q": "oat"}).json()["suggestions"] == []


def test_zone_change_is_visible_in_delivering_to(
    api_client, shop, django_capture_on_commit_callbacks
):
    url = "/api/v1/merchants/delivering-to/"
    assert len(api_client.get(url, near(shop)).json()["results"]) == 1
    assert api_client.get(url, near(shop))["X-Cache"] == "HIT"
    zone = shop["merchant"].delivery_zones.get()
    with django_capture_on_commit_callbacks(execute=True):
        shop["owner"].patch(
            f"/api/v1/merchants/{shop['merchant'].pk}/delivery-zones/{zone.pk}/",
            {"is_active": False},
        )
    after = api_client.get(url, near(shop))
    assert after["X-Cache"] == "MISS"
    assert after.json()["results"] == []


def test_merchant_deactivation_hides_its_products(
    api_client, shop, django_capture_on_commit_callbacks
):
    api_client.get(NEARBY, near(shop))
    with django_capture_on_commit_callbacks(execute=True):
        shop["owner"].patch(f"/api/v1/merchants/{shop['merchant'].pk}/", {"is_active": False})
    assert api_client.get(NEARBY, near(shop)).json()["results"] == []


def test_versions_lost_under_live_answers_never_come_back_to_their_numbers(
    api_client, shop, django_capture_on_commit_callbacks
):
    """Answers filed under versions 1 and 1, then the version keys lost (a cache Redis
    restarted while a request was filing its answer, keys deleted by hand): one stock
    change and one merchant change later, counting from 0 again would reach 1 and 1, and
    the old answer would be served."""
    redis = get_redis_connection("default")
    keys = [version_key(str(namespace)) for namespace in (Namespace.CATALOG, Namespace.MERCHANTS)]
    for key in keys:
        redis.set(key, 1)
    assert api_client.get(NEARBY, near(shop)).json()["results"][0]["quantity"] == 4
    redis.delete(*keys)
    with django_capture_on_commit_callbacks(execute=True):
        adjusted = shop["owner"].post(
            f"/api/v1/inventory/{shop['stock'].pk}/adjust/", {"delta": -3, "reason": "sold"}
        )
        versions_bump(Namespace.MERCHANTS)
    assert adjusted.status_code == 200
    after = api_client.get(NEARBY, near(shop))
    assert after["X-Cache"] == "MISS"
    assert after.json()["results"][0]["quantity"] == 1
    # Moved on from the clock, not from 0, and by one from there on.
    restarted = int(redis.get(keys[0]))
    assert restarted > 10**15
    with django_capture_on_commit_callbacks(execute=True):
        versions_bump(Namespace.CATALOG)
    assert int(redis.get(keys[0])) == restarted + 1


def test_rolled_back_write_bumps_nothing(api_client, shop, django_capture_on_commit_callbacks):
    api_client.get(NEARBY, near(shop))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = shop["owner"].post(
            f"/api/v1/inventory/{shop['stock'].pk}/adjust/", {"delta": -99}
        )
    assert response.status_code == 409
    assert callbacks == []
    assert api_client.get(NEARBY, near(shop))["X-Cache"] == "HIT"


def test_search_answers_from_the_database_when_redis_is_down(api_client, shop, settings, caplog):
    expected = api_client.get(NEARBY, near(shop)).json()
    dead = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    with override_settings(CACHES=dead), caplog.at_level(logging.WARNING):
        down = api_client.get(NEARBY, near(shop))
        search = api_client.get("/api/v1/search/products/", {"q": "milk"})
        delivering = api_client.get("/api/v1/merchants/delivering-to/", near(shop))
    assert down.status_code == 200
    assert down["X-Cache"] == "MISS"
    assert down.json() == expected
    assert search.status_code == 200
    assert search.json()["count"] == 1
    assert len(delivering.json()["results"]) == 1
    assert "redis unavailable" in caplog.text


def test_category_deletion_is_visible_in_the_merchants_categories(
    as_user, api_client, django_capture_on_commit_callbacks
):
    unused = factories.category()
    shop = factories.merchant(categories=[unused])
    factories.zone(merchant=shop)
    url = "/api/v1/merchants/delivering-to/"
    point = {"lat": shop.location.y, "lng": shop.location.x}
    assert api_client.get(url, point).json()["results"][0]["category_ids"] == [unused.pk]
    assert api_client.get(url, point)["X-Cache"] == "HIT"
    operator = as_user(factories.user(is_staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        assert operator.delete(f"/api/v1/categories/{unused.pk}/").status_code == 204
    after = api_client.get(url, point)
    assert after.status_code == 200
    assert after.json()["results"][0]["category_ids"] == []


def test_a_seeded_city_is_visible_at_once(api_client, django_capture_on_commit_callbacks):
    search = "/api/v1/search/products/"
    assert api_client.get(search).json()["count"] == 0
    assert api_client.get(search)["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "seed_demo",
            merchants=2,
            products_per_merchant=3,
            orders=0,
            couriers=0,
            seed=7,
            stdout=StringIO(),
        )
    assert api_client.get(search).json()["count"] > 0


def test_products_rendered_again_by_migrate_are_not_served_as_before(
    api_client, shop, monkeypatch, django_capture_on_commit_callbacks
):
    """A release whose product shape differs: `migrate` installs its trigger and renders
    every product again (`stored_json.sync_after_migrate`), and answers show them so."""
    assert "description" in api_client.get(NEARBY, near(shop)).json()["results"][0]["product"]
    assert api_client.get(NEARBY, near(shop))["X-Cache"] == "HIT"
    monkeypatch.setattr(stored_json, "PRODUCT", Shape("ProductOutput", PRODUCT.fields[:4]))
    with django_capture_on_commit_callbacks(execute=True):
        assert stored_json.sync() is True
    after = api_client.get(NEARBY, near(shop))
    assert after["X-Cache"] == "MISS"
    item = shop["item"]
    assert after.json()["results"][0]["product"] == {
        "id": item.pk,
        "merchant_id": item.merchant_id,
        "category_id": item.category_id,
        "title": "Oat Milk",
    }


def test_merchants_rendered_again_by_migrate_are_not_served_as_before(
    api_client, shop, monkeypatch, django_capture_on_commit_callbacks
):
    """The same for the merchants delivering-to shows (`delivering_sql.sync_after_migrate`)."""
    url = "/api/v1/merchants/delivering-to/"
    assert "phone" in api_client.get(url, near(shop)).json()["results"][0]
    assert api_client.get(url, near(shop))["X-Cache"] == "HIT"
    narrower = Shape("MerchantShown", MERCHANT_SHOWN.fields[:3])
    monkeypatch.setattr(delivering_sql, "MERCHANT_SHOWN", narrower)
    with django_capture_on_commit_callbacks(execute=True):
        assert delivering_sql.sync() is True
    after = api_client.get(url, near(shop))
    assert after["X-Cache"] == "MISS"
    assert "phone" not in after.json()["results"][0]
    assert after.json()["results"][0]["name"] == shop["merchant"].name
