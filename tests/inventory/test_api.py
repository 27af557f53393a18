from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.renderers import JSONRenderer

from geomarket.api.pagination import page_body
from inventory.models import MAX_QUANTITY, Inventory, InventoryAdjustment
from inventory.serializers import InventoryOutputSerializer, MerchantStockSerializer
from orders.models import Order
from tests import factories
from tests.market import ORDERS, order_body
from tests.rows import rows
from tests.threads import Worker, run_in_threads

pytestmark = pytest.mark.django_db

INVENTORY = "/api/v1/inventory/"


def test_inventory_shape_and_filters(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    plenty = factories.stock(product=factories.product(merchant=shop), quantity=50)
    low = factories.stock(product=factories.product(merchant=shop), quantity=2)
    at_threshold = factories.stock(
        product=factories.product(merchant=shop), quantity=5, low_stock_threshold=5
    )
    client = as_user(owner)

    body = client.get(f"{INVENTORY}{plenty.pk}/").json()
    assert set(body) == {
        "id",
        "merchant_id",
        "product_id",
        "quantity",
        "low_stock_threshold",
        "updated_at",
    }

    def ids(**params):
        return [row["id"] for row in client.get(INVENTORY, params).json()["results"]]

    assert ids() == [plenty.pk, low.pk, at_threshold.pk]
    assert ids(low_stock="true") == [low.pk, at_threshold.pk]
    assert ids(product_id=low.product_id) == [low.pk]
    assert ids(merchant_id=shop.pk) == [plenty.pk, low.pk, at_threshold.pk]


def test_operator_sees_every_merchant_and_filters_by_merchant(as_user):
    a = factories.merchant()
    b = factories.merchant()
    row_a = factories.stock(product=factories.product(merchant=a))
    row_b = factories.stock(product=factories.product(merchant=b))
    client = as_user(factories.user(is_staff=True))
    assert [r["id"] for r in client.get(INVENTORY).json()["results"]] == [row_a.pk, row_b.pk]
    only_b = client.get(INVENTORY, {"merchant_id": b.pk}).json()["results"]
    assert [r["id"] for r in only_b] == [row_b.pk]


def test_one_row_per_product(as_user):
    owner = factories.user()
    item = factories.product(merchant=factories.merchant(owner=owner))
    factories.stock(product=item)
    response = as_user(owner).post(INVENTORY, {"product_id": item.pk, "quantity": 1})
    assert response.status_code == 400
    assert "product_id" in response.json()
    assert Inventory.objects.filter(product=item).count() == 1


@pytest.mark.parametrize("quantity", [-1, 10**12, "many"])
def test_quantity_out_of_range_is_a_field_error(as_user, quantity):
    owner = factories.user()
    item = factories.product(merchant=factories.merchant(owner=owner))
    response = as_user(owner).post(INVENTORY, {"product_id": item.pk, "quantity": quantity})
    assert response.status_code == 400
    assert "quantity" in response.json()
    assert not Inventory.objects.exists()


def test_adjust_changes_stock_and_records_the_reason(as_user):
    owner = factories.user()
    row = factories.stock(
        product=factories.product(merchant=factories.merchant(owner=owner)), quantity=10
    )
    response = as_user(owner).post(
        f"{INVENTORY}{row.pk}/adjust/", {"delta": -4, "reason": "spoilt"}
    )
    assert response.status_code == 200
    assert response.json()["quantity"] == 6
    adjustment = InventoryAdjustment.objects.get(inventory=row)
    assert (adjustment.delta, adjustment.quantity_after, adjustment.reason) == (-4, 6, "spoilt")
    assert adjustment.actor_id == owner.pk


def test_adjust_below_zero_is_409_and_changes_nothing(as_user):
    owner = factories.user()
    row = factories.stock(
        product=factories.product(merchant=factories.merchant(owner=owner)), quantity=3
    )
    response = as_user(owner).post(f"{INVENTORY}{row.pk}/adjust/", {"delta": -4, "reason": "x"})
    assert response.status_code == 409
    assert "detail" in response.json()
    row.refresh_from_db()
    assert row.quantity == 3
    assert not InventoryAdjustment.objects.exists()


def test_adjust_above_the_most_stock_is_409_and_changes_nothing(as_user):
    # Each delta is within bounds; two of them took the stock past what a client may set,
    # and a third past the column's integer: the database refused it, with a 400.
    owner = factories.user()
    row = factories.stock(
        product=factories.product(merchant=factories.merchant(owner=owner)), quantity=3
    )
    client = as_user(owner)
    url = f"{INVENTORY}{row.pk}/adjust/"
    assert client.post(url, {"delta": MAX_QUANTITY - 3}).status_code == 200
    before = rows(Inventory, InventoryAdjustment)
    for delta in (1, MAX_QUANTITY):
        response = client.post(url, {"delta": delta})
        assert response.status_code == 409, response.json()
        assert f"{MAX_QUANTITY:,}" in response.json()["detail"]
    assert rows(Inventory, InventoryAdjustment) == before
    # Taking from the most stock still works.
    response = client.post(url, {"delta": -1})
    assert (response.status_code, response.json()["quantity"]) == (200, MAX_QUANTITY - 1)


def test_units_a_cancelled_order_gives_back_are_kept_past_the_most_stock(market):
    """The cap bounds what a client sets; units given back are real stock. A stock past
    it is read, changed by hand (PATCH) and taken from as any other; it is not added to."""
    bread = market["bread"]
    row = Inventory.objects.get(product=bread)
    Inventory.objects.filter(pk=row.pk).update(quantity=MAX_QUANTITY)
    placed = market["client"].post(ORDERS, order_body(market, (bread, 999)), format="json")
    assert placed.json()["status"] == "confirmed"
    owner = market["owner_client"]
    url = f"{INVENTORY}{row.pk}/"
    assert owner.patch(url, {"quantity": MAX_QUANTITY}, format="json").status_code == 200
    cancel = {"status": "cancelled"}
    response = market["client"].post(f"{ORDERS}{placed.json()['id']}/status/", cancel)
    assert response.status_code == 200
    assert owner.get(url).json()["quantity"] == MAX_QUANTITY + 999
    assert owner.patch(url, {"low_stock_threshold": 7}, format="json").status_code == 200
    assert owner.post(f"{url}adjust/", {"delta": 1}).json()["code"] == "stock_overflow"
    response = owner.post(f"{url}adjust/", {"delta": -1})
    assert (response.status_code, response.json()["quantity"]) == (200, MAX_QUANTITY + 998)


@pytest.mark.parametrize("body", [{"delta": 0}, {"delta": "x"}, {}, {"delta": 10**12}])
def test_bad_adjustments_are_field_errors(as_user, body):
    owner = factories.user()
    row = factories.stock(product=factories.product(merchant=factories.merchant(owner=owner)))
    before = rows(Inventory, InventoryAdjustment)
    response = as_user(owner).post(f"{INVENTORY}{row.pk}/adjust/", body)
    assert response.status_code == 400
    assert "delta" in response.json()
    assert rows(Inventory, InventoryAdjustment) == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_never_oversell():
    """Twelve threads, each with its own connection, take 1 from a stock of 5."""
    from inventory.services import StockUnderflow, inventory_adjust

    row = factories.stock(product=factories.product(merchant=factories.merchant()), quantity=5)

    def take_one():
        try:
            inventory_adjust(inventory_id=row.pk, delta=-1, reason="race")
        except StockUnderflow:
            return "underflow"
        return "ok"

    outcomes = run_in_threads(*[take_one] * 12)
    row.refresh_from_db()
    assert sorted(outcomes) == ["ok"] * 5 + ["underflow"] * 7
    assert row.quantity == 0
    assert InventoryAdjustment.objects.filter(inventory=row).count() == 5


def test_database_refuses_negative_stock():
    row = factories.stock(product=factories.product(merchant=factories.merchant()), quantity=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Inventory.objects.filter(pk=row.pk).update(quantity=-1)


def test_database_refuses_stock_under_the_wrong_merchant():
    item = factories.product(merchant=factories.merchant())
    stranger = factories.merchant()

    def create_and_check_now():
        Inventory.objects.create(merchant=stranger, product=item, quantity=1)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with pytest.raises(IntegrityError), transaction.atomic():
        create_and_check_now()


def test_merchant_stock_is_sorted_by_title_with_product_details(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    dairy = factories.category(name="Dairy")
    for title in ["Yoghurt", "butter", "Cheese"]:
        factories.stock(
            product=factories.product(merchant=shop, category=dairy, title=title, price="2.50")
        )
    factories.stock(product=factories.product(merchant=factories.merchant(), title="Alien"))
    body = as_user(owner).get(f"/api/v1/merchants/{shop.pk}/inventory/").json()
    assert [row["product_title"] for row in body["results"]] == ["Cheese", "Yoghurt", "butter"]
    first = body["results"][0]
    assert set(first) == {
        "id",
        "product_id",
        "product_title",
        "price",
        "category_name",
        "quantity",
        "low_stock_threshold",
        "updated_at",
    }
    assert first["price"] == "2.50"
    assert first["category_name"] == "Dairy"


def test_stock_lists_run_a_fixed_number_of_queries(as_user, django_assert_num_queries):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    for _ in range(12):
        factories.stock(product=factories.product(merchant=shop))
    client = as_user(owner)
    # token auth with the caller's merchant, then the page with its count
    for size in (3, 12):
        with django_assert_num_queries(2):
            response = client.get(INVENTORY, {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == size
    # ... and the merchant's active flag for the permission check
    for size in (3, 12):
        with django_assert_num_queries(3):
            response = client.get(f"/api/v1/merchants/{shop.pk}/inventory/", {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == size


def test_stock_answers_are_what_their_serializers_say(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    dairy = factories.category(name='Dairy "fresh" \u2029')
    rows = [
        factories.stock(product=factories.product(merchant=shop, category=dairy, title=title))
        for title in ("Milk \u2028", "Butter")
    ]
    Inventory.objects.filter(pk=rows[0].pk).update(
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 60, UTC)
    )
    for row in rows:
        row.refresh_from_db()
    client = as_user(owner)
    render = JSONRenderer().render
    for row in rows:
        detail = client.get(f"{INVENTORY}{row.pk}/")
        assert detail.content == render(InventoryOutputSerializer(row).data)
    listed = client.get(INVENTORY).json()["results"]
    assert render(listed) == render(InventoryOutputSerializer(rows, many=True).data)
    # The merchant's stock, rendered by PostgreSQL: the bytes DRF renders, page and all.
    stock = client.get(f"/api/v1/merchants/{shop.pk}/inventory/")
    expected = [
        {
            "id": row.pk,
            "product_id": row.product_id,
            "product_title": row.product.title,
            "price": row.product.price,
            "category_name": dairy.name,
            "quantity": row.quantity,
            "low_stock_threshold": row.low_stock_threshold,
            "updated_at": row.updated_at,
        }
        for row in reversed(rows)
    ]
    page = page_body(
        count=2,
        number=1,
        page_size=20,
        link_base=stock.wsgi_request.build_absolute_uri(),
        results=MerchantStockSerializer(expected, many=True).data,
    )
    assert stock.content == render(page)


def test_an_owner_sees_no_other_merchants_stock(as_user):
    owners = [factories.user() for _ in range(2)]
    rows = [
        factories.stock(product=factories.product(merchant=factories.merchant(owner=owner)))
        for owner in owners
    ]
    for owner, own, other in zip(owners, rows, reversed(rows), strict=True):
        client = as_user(owner)
        assert [row["id"] for row in client.get(INVENTORY).json()["results"]] == [own.pk]
        assert client.get(f"{INVENTORY}{own.pk}/").status_code == 200
        assert client.get(f"{INVENTORY}{other.pk}/").status_code == 404


def test_stocking_another_merchants_draft_tells_no_more_than_an_unknown_product(as_user):
    owner = factories.user()
    factories.merchant(owner=owner)
    other_shop = factories.merchant()
    draft = factories.product(merchant=other_shop, is_published=False)
    published = factories.product(merchant=other_shop)
    missing = published.pk + draft.pk + 1
    client = as_user(owner)

    def stocked(product_id: int):
        answer = client.post(INVENTORY, {"product_id": product_id, "quantity": 1}, format="json")
        return answer.status_code, list(answer.json())

    assert stocked(draft.pk) == stocked(missing) == (400, ["product_id"])
    # One anybody may see is another merchant's to stock.
    assert stocked(published.pk)[0] == 403
    assert not Inventory.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("meanwhile", ["cancelled", "returned", "placed"])
@pytest.mark.parametrize("body", [{"low_stock_threshold": 2}, {}])
def test_a_patch_keeps_the_stock_orders_changed_since_the_row_was_read(
    market, monkeypatch, meanwhile, body
):
    from inventory import apis

    order = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert order.status_code == 201, order.content
    if meanwhile == "returned":
        Order.objects.filter(pk=order.json()["id"]).update(status="failed")
    stock = Inventory.objects.get(product=market["bread"])
    assert stock.quantity == 18
    change = {
        "cancelled": lambda: market["owner_client"].post(
            f"{ORDERS}{order.json()['id']}/status/", {"status": "cancelled"}
        ),
        "returned": lambda: market["owner_client"].post(
            f"{ORDERS}{order.json()['id']}/status/", {"status": "returned"}
        ),
        "placed": lambda: market["client"].post(ORDERS, order_body(market, (market["bread"], 3))),
    }[meanwhile]
    expected = 15 if meanwhile == "placed" else 20
    real = apis.inventory_update

    def update(*, inventory, data):
        # Between the view's read of the row and the update: another request commits.
        other = Worker(change)
        other.start()
        assert other.outcome().status_code in (200, 201)
        assert Inventory.objects.get(pk=stock.pk).quantity == expected
        return real(inventory=inventory, data=data)

    monkeypatch.setattr(apis, "inventory_update", update)
    answer = market["owner_client"].patch(f"{INVENTORY}{stock.pk}/", body)
    assert answer.status_code == 200, answer.content
    assert answer.json()["quantity"] == expected
    assert Inventory.objects.get(pk=stock.pk).quantity == expected
