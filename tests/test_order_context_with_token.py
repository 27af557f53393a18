"""An order's context (merchant, zone, products, hours) is read by the statement that
looks the caller's token up (`orders.apis._OrderBody`, `read_with_token`): every answer
is the one the order's own read gives, in the same order of refusals (401, then 429, then
the body's 400s)."""

from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone
from rest_framework.test import APIClient

from geomarket.errors import DomainError
from orders.models import Order
from orders.services import OrderLine, ReadContext, order_context_statement, order_place
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db

FAR = {"type": "Point", "coordinates": [0.0, 0.0]}


def refusals(market) -> dict:
    """A body for each way validation refuses an order."""
    bread, milk = market["bread"], market["milk"]
    good = order_body(market, (bread, 2))
    return {
        "unknown merchant": good | {"merchant_id": 987654},
        "product not sold": good | {"items": [{"product_id": 999999, "quantity": 1}]},
        "not delivered there": order_body(market, (bread, 2), location=FAR),
        "below the minimum": order_body(market, (milk, 1)),
        "duplicate product": good | {"items": [{"product_id": bread.pk, "quantity": 1}] * 2},
        "missing field": {"merchant_id": market["shop"].pk},
        "slot not offered": good | {"slot_starts_at": "2001-01-01T00:00:00Z"},
    }


def by_token_and_alone(market, body, **extra):
    """The answer through the token's statement, and through the order's own read (a
    caller DRF authenticates otherwise), as (status, bytes)."""
    alone = APIClient()
    alone.force_authenticate(market["customer"])
    return [
        (answer.status_code, answer.content)
        for answer in (
            market["client"].post(ORDERS, body, format="json", **extra),
            alone.post(ORDERS, body, format="json", **extra),
        )
    ]


def test_every_refusal_reads_as_the_orders_own_read_does(market, django_assert_num_queries):
    for name, body in refusals(market).items():
        with django_assert_num_queries(1):
            market["client"].post(ORDERS, body, format="json")
        by_token, alone = by_token_and_alone(market, body)
        assert by_token == alone, name
        assert by_token[0] == 400, name


def test_a_closed_merchant_is_refused_alike(market):
    now = timezone.now()
    factories.closure(
        market["shop"],
        (now - timedelta(hours=1)).isoformat(),
        (now + timedelta(hours=2)).isoformat(),
    )
    by_token, alone = by_token_and_alone(market, order_body(market, (market["bread"], 2)))
    assert by_token == alone
    assert by_token[0] == 400
    assert b"closed" in by_token[1]


def test_a_malformed_body_is_refused_alike(market):
    for raw in ["{not json", "[]", '{"items": 3}']:
        token = market["client"].post(ORDERS, raw, content_type="application/json")
        alone = APIClient()
        alone.force_authenticate(market["customer"])
        own = alone.post(ORDERS, raw, content_type="application/json")
        assert (token.status_code, token.content) == (own.status_code, own.content), raw
        assert token.status_code == 400


def test_the_idempotency_keys_400_comes_before_the_bodys(market):
    body = order_body(market, (market["bread"], 2), location=FAR)
    by_token, alone = by_token_and_alone(market, body, HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert by_token == alone
    assert b"Idempotency-Key" in by_token[1]


def test_a_bad_token_is_401_whatever_the_body(market, make_user):
    inactive = make_user()
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    answers = set()
    for key in ["0" * 40, inactive.auth_token.key]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        for body in [*refusals(market).values(), order_body(market, (market["bread"], 2))]:
            answer = client.post(ORDERS, body, format="json")
            answers.add((key, answer.status_code, answer.content))
        answer = client.post(ORDERS, "{not json", content_type="application/json")
        answers.add((key, answer.status_code, answer.content))
    # One answer per key, a 401 in DRF's words, whatever the body.
    assert sorted((key, status) for key, status, _ in answers) == sorted(
        [("0" * 40, 401), (inactive.auth_token.key, 401)]
    )
    assert not Order.objects.exists()


def test_over_its_limit_an_order_is_429_though_its_context_was_read(market, settings):
    settings.ORDER_RATE_LIMIT_PER_MINUTE = 1
    client = market["client"]
    assert client.post(ORDERS, order_body(market, (market["bread"], 2))).status_code == 201
    for body in [*refusals(market).values(), order_body(market, (market["bread"], 2))]:
        assert client.post(ORDERS, body, format="json").status_code == 429
    assert Order.objects.count() == 1


def test_a_confirmed_order_reads_its_context_with_the_token(market):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = order_body(market, (market["bread"], 2))
    with CaptureQueriesContext(connection) as captured:
        answer = market["client"].post(ORDERS, body, format="json")
    assert answer.status_code == 201
    assert answer.json()["status"] == "confirmed"
    first, *rest = [query["sql"] for query in captured.captured_queries]
    assert "authtoken_token" in first
    assert "merchants_deliveryzone" in first
    assert not [sql for sql in rest if "merchants_deliveryzone" in sql]


def _statement(market, *, merchant_id=None):
    shop = market["shop"].location
    location = Point(shop.x + 0.001, shop.y, srid=4326)
    address = {"line1": "1 Test Street", "city": "Berlin", "postal_code": "10178"}
    return {
        "merchant_id": merchant_id or market["shop"].pk,
        "lines": [OrderLine(market["bread"].pk, 2)],
        "delivery_address": address | {"location": location},
        "slot_starts_at": None,
    }


def test_order_place_takes_the_row_read_by_its_own_statement(market, django_assert_num_queries):
    arguments = _statement(market)
    # A row saying there is no such merchant: taken as read, with no read of its own.
    read = ReadContext(order_context_statement(**arguments), None)
    with django_assert_num_queries(0), pytest.raises(DomainError, match="Unknown or inactive"):
        order_place(buyer=market["customer"], read_context=read, **arguments)


def test_order_place_reads_its_own_context_when_the_row_was_read_for_another(market):
    arguments = _statement(market)
    other = order_context_statement(**(arguments | {"merchant_id": 987654}))
    order = order_place(
        buyer=market["customer"], read_context=ReadContext(other, None), **arguments
    )
    assert order.status == "confirmed"
