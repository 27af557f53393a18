"""Limits on credential guessing, account farming and order floods."""

import pytest

from inventory.models import Inventory
from orders.models import IdempotencyKey, Order, OrderItem, OutboxMessage
from tests import factories
from tests.market import ORDERS, order_body
from tests.rows import rows

pytestmark = pytest.mark.django_db

# What placing an order writes: a refused placement leaves all of it as it was.
ORDER_STATE = (Order, OrderItem, Inventory, OutboxMessage, IdempotencyKey)


def test_token_requests_are_limited_per_ip(api_client, settings, monkeypatch):
    from geomarket.accounts import apis

    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 3
    factories.user(username="eve")
    checked = []
    check = apis.token_obtain
    monkeypatch.setattr(apis, "token_obtain", lambda **kw: checked.append(kw) or check(**kw))

    def guess(password):
        return api_client.post("/api/v1/auth/token/", {"username": "eve", "password": password})

    assert [guess("guess").status_code for _ in range(3)] == [400, 400, 400]
    assert len(checked) == 3
    # Refused before the view runs: not even the right password is checked, or answered.
    refused = guess("pw-Secret-123")  # the factory's password
    assert refused.status_code == 429
    assert set(refused.json()) == {"detail", "retry_after"}
    assert refused.json()["retry_after"] >= 1
    assert refused["Retry-After"]
    assert len(checked) == 3


def test_registration_is_limited_per_ip(api_client, settings, django_user_model):
    settings.REGISTER_RATE_LIMIT_PER_MINUTE = 2
    statuses = [
        api_client.post(
            "/api/v1/auth/register/", {"username": f"farm{n}", "password": "Str0ng-pass-phrase"}
        ).status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]
    assert django_user_model.objects.filter(username__startswith="farm").count() == 2


def test_order_placement_is_limited_per_user(market, settings):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 2
    statuses = [
        market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    assert Order.objects.count() == 2
    # reading orders is not limited
    assert market["client"].get(ORDERS).status_code == 200


def test_order_placement_is_limited_per_ip(market, settings, as_user):
    settings.ORDER_IP_RATE_LIMIT_PER_MINUTE = 2
    clients = [market["client"], as_user(factories.user())]
    statuses = [
        c.post(ORDERS, order_body(market, (market["bread"], 2))).status_code for c in clients
    ]
    assert statuses == [201, 201]
    before = rows(*ORDER_STATE)
    refused = as_user(factories.user()).post(ORDERS, order_body(market, (market["bread"], 2)))
    assert refused.status_code == 429
    assert rows(*ORDER_STATE) == before


def test_a_request_refused_by_one_limit_takes_nothing_from_the_other(market, settings, as_user):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 3
    settings.ORDER_IP_RATE_LIMIT_PER_MINUTE = 2
    neighbour, customer = as_user(factories.user()), market["client"]

    def place(client, **meta):
        return client.post(ORDERS, order_body(market, (market["bread"], 2)), **meta)

    assert [place(neighbour).status_code for _ in range(2)] == [201, 201]
    before = rows(*ORDER_STATE)
    # The shared address is spent: the customer is refused by the address's limit...
    assert [place(customer).status_code for _ in range(2)] == [429, 429]
    assert rows(*ORDER_STATE) == before
    # ...and those refusals took nothing from the customer's own budget of three.
    elsewhere = [place(customer, REMOTE_ADDR=f"198.51.100.{n}") for n in range(1, 5)]
    assert [answer.status_code for answer in elsewhere] == [201, 201, 201, 429]


def test_an_order_over_its_limit_is_429_whatever_is_wrong_with_its_body(market, settings):
    """The order view reads its body while Redis answers the limit (`rate_limit_deferred`):
    the limit is still told first."""
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 1
    client = market["client"]
    assert client.post(ORDERS, order_body(market, (market["bread"], 2))).status_code == 201
    before = rows(*ORDER_STATE)
    far = {"type": "Point", "coordinates": [0.0, 0.0]}
    refusals = [
        client.post(ORDERS, "{not json", content_type="application/json"),
        client.post(ORDERS, {"merchant_id": market["shop"].pk}),
        client.post(ORDERS, order_body(market, (market["bread"], 2), location=far)),
        client.post(
            ORDERS, order_body(market, (market["bread"], 2)), HTTP_IDEMPOTENCY_KEY="k" * 300
        ),
    ]
    assert [answer.status_code for answer in refusals] == [429] * 4
    assert rows(*ORDER_STATE) == before


def test_an_order_refused_under_its_limit_carries_the_limits_headers(market, settings):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 5
    far = {"type": "Point", "coordinates": [0.0, 0.0]}
    client = market["client"]
    answers = [
        client.post(ORDERS, order_body(market, (market["bread"], 2), location=far))
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [400, 400]
    assert answers[0].json() == {
        "delivery_address": ["The merchant does not deliver to this location."]
    }
    assert [answer["X-RateLimit-Remaining"] for answer in answers] == ["4", "3"]


def test_an_order_is_limited_when_redis_has_lost_the_script(market, settings, monkeypatch):
    """A Redis restarted since the script was loaded answers NOSCRIPT; the limit still holds."""
    from geomarket import ratelimit

    monkeypatch.setattr(ratelimit, "_GCRA_SHA", "0" * 40)
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 1
    statuses = [
        market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).status_code
        for _ in range(2)
    ]
    assert statuses == [201, 429]


def test_order_limits_fail_open_when_redis_is_down(market, settings, caplog):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 1
    statuses = [
        market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).status_code
        for _ in range(2)
    ]
    assert statuses == [201, 201]
    assert "failing open" in caplog.text
