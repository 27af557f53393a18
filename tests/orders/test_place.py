import pytest

from inventory.models import Inventory
from orders.models import Order, OrderStatusChange, OutboxMessage
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


def stock_of(product) -> int:
    return Inventory.objects.get(product=product).quantity


def test_in_stock_order_is_confirmed_with_the_cheapest_covering_zone_fee(market):
    response = market["client"].post(
        ORDERS, order_body(market, (market["bread"], 2), (market["milk"], 4))
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "confirmed"
    assert body["subtotal"] == "11.00"
    assert body["delivery_fee"] == "1.50"
    assert body["total"] == "12.50"
    assert body["rejection_reason"] == ""
    assert body["shortages"] == []
    assert body["courier_id"] is None
    assert body["merchant"] == {"id": market["shop"].pk, "name": market["shop"].name}
    assert body["items"] == [
        {
            "product_id": market["bread"].pk,
            "title": "Bread",
            "unit_price": "3.00",
            "quantity": 2,
            "line_total": "6.00",
        },
        {
            "product_id": market["milk"].pk,
            "title": "Milk",
            "unit_price": "1.25",
            "quantity": 4,
            "line_total": "5.00",
        },
    ]
    assert body["delivery_address"]["city"] == "Berlin"
    assert [h["status"] for h in body["history"]] == ["confirmed"]
    assert stock_of(market["bread"]) == 18
    assert stock_of(market["milk"]) == 6
    assert OutboxMessage.objects.filter(payload={"order_id": body["id"]}).count() == 1


def test_the_answer_built_in_memory_is_what_was_stored(market):
    placed = (
        market["client"]
        .post(ORDERS, order_body(market, (market["milk"], 4), (market["bread"], 2)))
        .json()
    )
    stored = market["client"].get(f"{ORDERS}{placed['id']}/").json()
    assert placed == stored


def test_placing_an_order_takes_a_fixed_number_of_queries(market, django_assert_num_queries):
    body = order_body(market, (market["bread"], 1), (market["milk"], 4))
    # The token with the order's merchant, zone and products, then one statement each:
    # the stock (its rows locked, checked and taken); the order's rows. The savepoint
    # pair is the test's enclosing transaction.
    with django_assert_num_queries(5):
        response = market["client"].post(ORDERS, body)
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "confirmed"
    # An Idempotency-Key adds its claim; the key is linked to the order with its rows.
    with django_assert_num_queries(6):
        keyed = market["client"].post(ORDERS, body, headers={"Idempotency-Key": "k-1"})
    assert keyed.status_code == 201
    replay = market["client"].post(ORDERS, body, headers={"Idempotency-Key": "k-1"})
    assert replay.json()["id"] == keyed.json()["id"]


def test_short_line_rejects_the_whole_order_and_touches_no_stock(market):
    response = market["client"].post(
        ORDERS, order_body(market, (market["bread"], 2), (market["milk"], 11))
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "rejected"
    assert body["rejection_reason"] == "insufficient_stock"
    assert body["shortages"] == [
        {"product_id": market["milk"].pk, "requested": 11, "available": 10}
    ]
    assert stock_of(market["bread"]) == 20
    assert stock_of(market["milk"]) == 10
    assert not OutboxMessage.objects.exists()


def test_product_without_inventory_is_short(market):
    loose = factories.product(merchant=market["shop"], price="9.00")
    body = market["client"].post(ORDERS, order_body(market, (loose, 1))).json()
    assert body["status"] == "rejected"
    assert body["shortages"] == [{"product_id": loose.pk, "requested": 1, "available": 0}]


def bad_cases(market):
    other = factories.product(merchant=factories.merchant(), price="5.00")
    draft = factories.product(merchant=market["shop"], price="5.00", is_published=False)
    closed = factories.merchant(is_active=False)
    far = {"type": "Point", "coordinates": [2.35, 48.85]}
    bread = market["bread"]
    many = [(factories.product(merchant=market["shop"], price="1.00"), 1) for _ in range(101)]
    return {
        "unknown merchant": (
            {**order_body(market, (bread, 2)), "merchant_id": 999999},
            "merchant_id",
        ),
        "inactive merchant": (
            {**order_body(market, (bread, 2)), "merchant_id": closed.pk},
            "merchant_id",
        ),
        "unknown product": (
            order_body(market, (bread, 2)) | {"items": [{"product_id": 999999, "quantity": 1}]},
            "items",
        ),
        "unpublished product": (order_body(market, (draft, 2)), "items"),
        "another merchant's product": (order_body(market, (other, 2)), "items"),
        "product twice": (order_body(market, (bread, 1), (bread, 2)), "items"),
        "quantity 0": (order_body(market, (bread, 0)), "items"),
        "quantity 1000": (order_body(market, (bread, 1000)), "items"),
        "more than 100 lines": (order_body(market, *many), "items"),
        "no lines": (order_body(market), "items"),
        "outside every zone": (order_body(market, (bread, 2), location=far), "delivery_address"),
        "below the minimum": (order_body(market, (market["milk"], 1)), "items"),
        "bad location": (
            order_body(market, (bread, 2), location={"type": "Point", "coordinates": [500, 1]}),
            "delivery_address",
        ),
    }


CASES = [
    "unknown merchant",
    "inactive merchant",
    "unknown product",
    "unpublished product",
    "another merchant's product",
    "product twice",
    "quantity 0",
    "quantity 1000",
    "more than 100 lines",
    "no lines",
    "outside every zone",
    "below the minimum",
    "bad location",
]


@pytest.mark.parametrize("case", CASES)
def test_invalid_orders_are_400_and_change_nothing(market, case):
    body, field = bad_cases(market)[case]
    response = market["client"].post(ORDERS, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Order.objects.exists()
    assert stock_of(market["bread"]) == 20


def test_zone_boundary_counts_as_inside(market):
    zone = market["zone"]
    x, y = zone.area.coords[0][0][0]  # a corner of the square zone
    response = market["client"].post(
        ORDERS,
        order_body(market, (market["bread"], 2), location={"type": "Point", "coordinates": [x, y]}),
    )
    assert response.status_code == 201
    assert response.json()["delivery_fee"] == "2.50"


def test_anonymous_cannot_order(market, as_user):
    response = as_user(None).post(ORDERS, order_body(market, (market["bread"], 1)))
    assert response.status_code == 401
    assert not Order.objects.exists()
    assert stock_of(market["bread"]) == 20


def test_idempotent_retry_returns_the_first_order_and_changes_nothing(market):
    body = order_body(market, (market["bread"], 3))
    first = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="abc-123")
    again = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1
    assert stock_of(market["bread"]) == 17
    assert OrderStatusChange.objects.count() == 1


def test_same_key_with_another_body_is_409(market):
    market["client"].post(
        ORDERS, order_body(market, (market["bread"], 3)), HTTP_IDEMPOTENCY_KEY="k1"
    )
    response = market["client"].post(
        ORDERS, order_body(market, (market["bread"], 4)), HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 409
    assert "detail" in response.json()
    assert Order.objects.count() == 1
    assert stock_of(market["bread"]) == 17


def test_keys_are_per_user(market, as_user):
    body = order_body(market, (market["bread"], 3))
    market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="shared")
    other = as_user(factories.user()).post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="shared")
    assert other.status_code == 201
    assert Order.objects.count() == 2


def test_expired_key_places_a_new_order(market):
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import IdempotencyKey

    body = order_body(market, (market["bread"], 2))
    first = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="old").json()
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = market["client"].post(ORDERS, body, HTTP_IDEMPOTENCY_KEY="old").json()
    assert second["id"] != first["id"]


def test_failed_validation_does_not_consume_the_key(market):
    bad = order_body(market, (market["milk"], 1))  # below the minimum
    assert market["client"].post(ORDERS, bad, HTTP_IDEMPOTENCY_KEY="k").status_code == 400
    assert not Order.objects.exists()
    good = order_body(market, (market["bread"], 2))
    assert market["client"].post(ORDERS, good, HTTP_IDEMPOTENCY_KEY="k").status_code == 201


def test_prune_removes_only_expired_keys(market):
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import IdempotencyKey
    from orders.tasks import prune_idempotency_keys

    for key in ("a", "b"):
        response = market["client"].post(
            ORDERS, order_body(market, (market["bread"], 2)), HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code == 201
    IdempotencyKey.objects.filter(key="a").update(created_at=timezone.now() - timedelta(days=2))
    assert prune_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]


def test_a_point_written_with_a_negative_zero_is_the_same_request_again(as_user):
    """On the prime meridian a client may write its longitude as -0.0: the same point, so
    an `Idempotency-Key` retry of it is the same order, not a key reused (409)."""
    shop = factories.merchant(lat=51.4769, lng=0.0)
    factories.zone(merchant=shop, min_order="1.00")
    tea = factories.product(merchant=shop, price="3.00")
    factories.stock(product=tea, quantity=5)
    client = as_user(factories.user())

    def place(lng: float):
        address = {
            "line1": "Blackheath Avenue",
            "city": "London",
            "postal_code": "SE10 8XJ",
            "location": {"type": "Point", "coordinates": [lng, 51.4769]},
        }
        body = {
            "merchant_id": shop.pk,
            "items": [{"product_id": tea.pk, "quantity": 1}],
            "delivery_address": address,
        }
        return client.post(ORDERS, body, format="json", headers={"Idempotency-Key": "meridian"})

    first, again = place(0.0), place(-0.0)
    assert (first.status_code, again.status_code) == (201, 201), again.content
    assert again.json()["id"] == first.json()["id"]
