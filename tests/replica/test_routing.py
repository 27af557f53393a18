"""Reads of the selectors marked `replica_reads` go to a streaming replica, and to the
primary wherever the replica could answer wrong: in a transaction, after the client's
own write, while it lags, when it is down."""

import json
from decimal import Decimal

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory

from catalog.models import Product
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.db.replicas import READ_AFTER_COOKIE, ReplicaReadsMiddleware, replica_reads
from geomarket.sql import fetch_value
from tests import factories
from tests.market import api_client_as
from tests.replica.conftest import (
    REPLICA,
    StoppableProxy,
    lagging_by,
    replay_paused,
    replayed,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@replica_reads
def in_recovery() -> bool:
    return fetch_value("SELECT pg_is_in_recovery()", {})


@pytest.fixture
def product():
    owner = factories.user()
    bread = factories.product(merchant=factories.merchant(owner=owner), price="3.00")
    replayed()
    return bread


def price_seen(client, product) -> Decimal:
    response = client.get(f"/api/v1/products/{product.pk}/")
    assert response.status_code == 200, response.content
    return Decimal(response.json()["price"])


def test_a_marked_read_runs_on_the_replica_and_others_on_the_primary(replica):
    assert in_recovery() is True
    assert fetch_value("SELECT pg_is_in_recovery()", {}) is False


def test_reads_in_a_transaction_stay_on_the_primary(replica):
    with transaction.atomic():
        assert in_recovery() is False


@pytest.mark.parametrize(
    ("method", "write_first", "on_replica"),
    [("get", False, True), ("post", False, False), ("get", True, False)],
)
def test_reads_of_an_unsafe_request_or_after_a_write_stay_on_the_primary(
    replica, method, write_first, on_replica
):
    def view(request):
        if write_first:
            factories.category()
        return HttpResponse(json.dumps(in_recovery()))

    response = ReplicaReadsMiddleware(view)(getattr(RequestFactory(), method)("/"))
    assert json.loads(response.content) is on_replica


@pytest.mark.parametrize("bumps", [False, True])
def test_only_a_write_of_what_replicas_serve_makes_its_client_read_after_it(replica, bumps):
    def view(request):
        if bumps:
            with transaction.atomic():
                versions_bump(Namespace.CATALOG)
        return HttpResponse(json.dumps(in_recovery()))

    response = ReplicaReadsMiddleware(view)(RequestFactory().get("/"))
    assert (READ_AFTER_COOKIE in response.cookies) is bumps
    # A read after the write in the same request stays on the primary.
    assert json.loads(response.content) is not bumps


def test_healthz_says_a_healthy_replica_is_ok(replica):
    health = api_client_as(None).get("/healthz")
    assert health.status_code == 200
    assert health.json()["checks"]["replica"] == "ok"


def test_a_product_read_comes_from_the_replica(replica, product):
    replay_paused()
    Product.objects.filter(pk=product.pk).update(price="4.00")
    assert price_seen(api_client_as(None), product) == Decimal("3.00")


def test_a_merchant_sees_the_price_it_just_changed(replica, product):
    owner_client = api_client_as(product.merchant.owner)
    replay_paused()
    response = owner_client.patch(f"/api/v1/products/{product.pk}/", {"price": "5.00"})
    assert response.status_code == 200, response.content
    assert price_seen(owner_client, product) == Decimal("5.00")
    # Everyone else still reads the replica, which has not replayed the change.
    assert price_seen(api_client_as(None), product) == Decimal("3.00")


def test_a_lagging_replica_is_skipped(replica, product, settings):
    settings.REPLICA_MAX_LAG_SECONDS = 0.2
    replay_paused()
    Product.objects.filter(pk=product.pk).update(price="4.00")
    # The replica has received the update and not replayed it: it lags by the age of its
    # last replayed transaction.
    lagging_by(0.2)
    assert price_seen(api_client_as(None), product) == Decimal("4.00")


def test_a_stopped_replica_is_left_within_the_request(replica, product, settings):
    from django.db import connections

    replica_settings = connections[REPLICA].settings_dict
    port = replica_settings["PORT"]
    proxy = StoppableProxy(int(port))
    replica_settings["PORT"] = proxy.listener.getsockname()[1]
    connections[REPLICA].close()
    # The reading taken through the proxy stands for a minute: the next read trusts it.
    settings.REPLICA_CHECK_SECONDS = 60
    try:
        assert in_recovery() is True
        proxy.stop()
        assert price_seen(api_client_as(None), product) == Decimal("3.00")
        health = api_client_as(None).get("/healthz")
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "checks": {"database": "ok", "cache": "ok", "broker": "ok", "replica": "degraded"},
        }
    finally:
        replica_settings["PORT"] = port
        connections[REPLICA].close()


def test_a_token_client_without_cookies_sees_the_price_it_just_changed(replica, product):
    owner_client = api_client_as(product.merchant.owner)
    replay_paused()
    response = owner_client.patch(f"/api/v1/products/{product.pk}/", {"price": "6.00"})
    assert response.status_code == 200, response.content
    owner_client.cookies.clear()
    assert price_seen(owner_client, product) == Decimal("6.00")
    assert price_seen(api_client_as(factories.user()), product) == Decimal("3.00")
