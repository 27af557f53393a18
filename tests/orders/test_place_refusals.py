"""What a refused order costs, and how a retry with its Idempotency-Key is answered once the
order's validation moved before the transaction."""

import pytest

from catalog.models import Product
from orders.models import IdempotencyKey, Order
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


def test_an_order_refused_by_validation_costs_one_read_with_the_token(
    market, django_assert_num_queries
):
    body = order_body(market, (market["bread"], 2)) | {
        "items": [{"product_id": 999999, "quantity": 1}]
    }
    # The token's statement reads the order's context too (`read_with_token`). No
    # transaction is opened for an order that writes nothing: no savepoint here.
    with django_assert_num_queries(1):
        response = market["client"].post(ORDERS, body)
    assert response.status_code == 400
    assert response.json() == {"items": ["Product 999999 is not sold by this merchant."]}
    # With a key, only a read of the key's first order is added: it claims nothing.
    with django_assert_num_queries(2):
        keyed = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="refused")
    assert keyed.json() == response.json()
    assert not IdempotencyKey.objects.exists()


def test_a_retry_is_answered_with_the_first_order_though_its_body_no_longer_validates(market):
    body = order_body(market, (market["bread"], 2))
    first = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="again")
    assert first.status_code == 201
    Product.objects.filter(pk=market["bread"].pk).update(is_published=False)
    retry = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="again")
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert Order.objects.count() == 1


def test_a_key_reused_with_a_body_that_does_not_validate_is_409(market):
    market["client"].post(
        ORDERS, order_body(market, (market["bread"], 2)), HTTP_IDEMPOTENCY_KEY="reused"
    )
    refused = market["client"].post(
        ORDERS, order_body(market, (market["milk"], 1)), HTTP_IDEMPOTENCY_KEY="reused"
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "idempotency_key_reused"


def test_an_expired_key_does_not_answer_a_body_that_does_not_validate(market):
    from datetime import timedelta

    from django.utils import timezone

    body = order_body(market, (market["bread"], 2))
    market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    Product.objects.filter(pk=market["bread"].pk).update(is_published=False)
    response = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="old")
    assert response.status_code == 400
    assert "items" in response.json()
