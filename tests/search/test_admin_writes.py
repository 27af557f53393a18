"""Writes made in `/admin/`, through its own forms, reach every cached answer at once,
as writes through the API do."""

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from merchants.models import Address, DeliveryZone, Merchant, OpeningInterval
from merchants.services import merchant_update
from tests import factories
from tests.admin_forms import submit
from tests.market import api_client_as

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/products/nearby/"
SEARCH = "/api/v1/search/products/"
SUGGEST = "/api/v1/search/suggest/"
DELIVERING = "/api/v1/merchants/delivering-to/"


@pytest.fixture
def operator(client):
    account = factories.user(is_staff=True)
    account.is_superuser = True
    account.save()
    client.force_login(account)
    return client


@pytest.fixture
def shop():
    tag = factories.category(name="Dairy")
    merchant = factories.merchant(categories=[tag])
    item = factories.product(merchant=merchant, category=tag, title="Oat Milk", price="1.80")
    stock = factories.stock(product=item, quantity=4)
    zone = factories.zone(merchant=merchant)
    return {"merchant": merchant, "item": item, "stock": stock, "zone": zone, "tag": tag}


@pytest.fixture
def cached(api_client, shop):
    """Fetch the four cached answers twice, the second time from the cache, and later
    fetch them again."""
    point = {"lat": shop["merchant"].location.y, "lng": shop["merchant"].location.x}
    requests = {
        "nearby": (NEARBY, point),
        "search": (SEARCH, {"q": "milk"}),
        "suggest": (SUGGEST, {"q": "milk"}),
        "delivering": (DELIVERING, point),
    }

    def fetch() -> dict:
        answers = {}
        for name, (url, params) in requests.items():
            response = api_client.get(url, params)
            assert response.status_code == 200, name
            answers[name] = response.json()
        return answers

    fetch()
    for url, params in requests.values():
        assert api_client.get(url, params)["X-Cache"] == "HIT"
    return fetch


def saved(response) -> None:
    assert response.status_code == 302, response.content.decode()[:2000]


def test_product_change(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/catalog/product/{shop['item'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "product_form", {"title": "Soy Milk", "price": "2.10"}))
    after = cached()
    assert after["nearby"]["results"][0]["product"]["title"] == "Soy Milk"
    assert after["search"]["results"][0]["price"] == "2.10"
    assert after["suggest"]["suggestions"] == ["Soy Milk"]


def test_product_unpublished(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/catalog/product/{shop['item'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "product_form", {}, remove=["is_published"]))
    assert not Product.objects.get(pk=shop["item"].pk).is_published
    after = cached()
    assert after["nearby"]["results"] == []
    assert after["search"]["count"] == 0
    assert after["suggest"]["suggestions"] == []


def test_product_added(operator, shop, cached, django_capture_on_commit_callbacks):
    data = {
        "merchant": shop["merchant"].pk,
        "category": shop["tag"].pk,
        "title": "Almond Milk",
        "price": "2.50",
        "is_published": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, "/admin/catalog/product/add/", "product_form", data))
    after = cached()
    assert sorted(row["title"] for row in after["search"]["results"]) == ["Almond Milk", "Oat Milk"]
    assert after["suggest"]["suggestions"] == ["Almond Milk", "Oat Milk"]


def test_product_deleted(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/catalog/product/{shop['item'].pk}/delete/"
    assert operator.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post(url, {"post": "yes"}))
    assert not Product.objects.filter(pk=shop["item"].pk).exists()
    after = cached()
    assert after["nearby"]["results"] == []
    assert after["search"]["count"] == 0
    assert after["suggest"]["suggestions"] == []


def test_products_deleted_in_bulk(operator, shop, cached, django_capture_on_commit_callbacks):
    selected = {"action": "delete_selected", "_selected_action": [shop["item"].pk]}
    confirm = operator.post("/admin/catalog/product/", selected)
    assert confirm.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post("/admin/catalog/product/", {**selected, "post": "yes"}))
    assert not Product.objects.filter(pk=shop["item"].pk).exists()
    after = cached()
    assert after["nearby"]["results"] == []
    assert after["search"]["count"] == 0


def test_stock_change(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/inventory/inventory/{shop['stock'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "inventory_form", {"quantity": "1"}))
    after = cached()
    assert after["nearby"]["results"][0]["quantity"] == 1
    assert after["search"]["results"][0]["quantity"] == 1


def test_stock_deleted(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/inventory/inventory/{shop['stock'].pk}/delete/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post(url, {"post": "yes"}))
    after = cached()
    assert after["nearby"]["results"] == []  # in stock only, by default
    assert after["search"]["results"][0]["quantity"] == 0


def test_stock_added(operator, shop, cached, django_capture_on_commit_callbacks):
    item = factories.product(merchant=shop["merchant"], title="Rice Milk")
    cached()
    data = {"product": item.pk, "quantity": "7", "low_stock_threshold": "2"}
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, "/admin/inventory/inventory/add/", "inventory_form", data))
    assert item.inventory.merchant_id == shop["merchant"].pk
    titles = {row["product"]["title"]: row["quantity"] for row in cached()["nearby"]["results"]}
    assert titles == {"Oat Milk": 4, "Rice Milk": 7}


def test_merchant_change(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/merchants/merchant/{shop['merchant'].pk}/change/"
    other = factories.category(name="Bakery")
    with django_capture_on_commit_callbacks(execute=True):
        saved(
            submit(operator, url, "merchant_form", {"name": "Milk Bar", "categories": [other.pk]})
        )
    after = cached()
    assert after["nearby"]["results"][0]["merchant"]["name"] == "Milk Bar"
    assert after["delivering"]["results"][0]["name"] == "Milk Bar"
    assert after["delivering"]["results"][0]["category_ids"] == [other.pk]


def test_merchant_deactivated(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/merchants/merchant/{shop['merchant'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "merchant_form", {}, remove=["is_active"]))
    after = cached()
    assert after["nearby"]["results"] == []
    assert after["search"]["count"] == 0
    assert after["suggest"]["suggestions"] == []
    assert after["delivering"]["results"] == []


def test_zone_changed_on_the_merchant_page(
    operator, shop, cached, django_capture_on_commit_callbacks
):
    url = f"/admin/merchants/merchant/{shop['merchant'].pk}/change/"
    changes = {"delivery_zones-0-delivery_fee": "4.25"}
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "merchant_form", changes))
    assert cached()["delivering"]["results"][0]["delivery_fee"] == "4.25"


def test_zone_deleted_on_the_merchant_page(
    operator, shop, cached, django_capture_on_commit_callbacks
):
    url = f"/admin/merchants/merchant/{shop['merchant'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "merchant_form", {"delivery_zones-0-DELETE": "on"}))
    assert not DeliveryZone.objects.exists()
    assert cached()["delivering"]["results"] == []


def test_merchant_deleted(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/merchants/merchant/{shop['merchant'].pk}/delete/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post(url, {"post": "yes"}))
    after = cached()
    assert after["nearby"]["results"] == []
    assert after["search"]["count"] == 0
    assert after["delivering"]["results"] == []


def test_merchant_added(operator, shop, cached, django_capture_on_commit_callbacks):
    point = shop["merchant"].location
    where = {
        "line1": "Torstr. 1",
        "city": "Berlin",
        "postal_code": "10119",
        "location": f"SRID=4326;POINT({point.x} {point.y})",
    }
    saved(submit(operator, "/admin/merchants/address/add/", "address_form", where))
    address = Address.objects.get(line1="Torstr. 1")
    data = {
        "owner": factories.user().pk,
        "name": "Second Shop",
        "address": address.pk,
        "is_active": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, "/admin/merchants/merchant/add/", "merchant_form", data))
    second = Merchant.objects.get(name="Second Shop")
    assert second.location == address.location
    zone = f"/admin/merchants/deliveryzone/{shop['zone'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, zone, "deliveryzone_form", {"merchant": second.pk}))
    assert [row["name"] for row in cached()["delivering"]["results"]] == ["Second Shop"]


def test_address_change(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/merchants/address/{shop['merchant'].address_id}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "address_form", {"line1": "Karl-Marx-Allee 2"}))
    assert cached()["delivering"]["results"][0]["address"]["line1"] == "Karl-Marx-Allee 2"


def test_category_renamed(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/catalog/productcategory/{shop['tag'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "productcategory_form", {"name": "Plant Milks"}))
    assert cached()["search"]["results"][0]["category"]["name"] == "Plant Milks"


def test_category_deleted(operator, shop, cached, django_capture_on_commit_callbacks):
    unused = factories.category(name="Unused")
    with django_capture_on_commit_callbacks(execute=True):
        merchant_update(merchant=shop["merchant"], data={"categories": [shop["tag"], unused]})
    assert cached()["delivering"]["results"][0]["category_ids"] == sorted(
        [shop["tag"].pk, unused.pk]
    )
    url = f"/admin/catalog/productcategory/{unused.pk}/delete/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post(url, {"post": "yes"}))
    assert cached()["delivering"]["results"][0]["category_ids"] == [shop["tag"].pk]


def test_zone_change(operator, shop, cached, django_capture_on_commit_callbacks):
    url = f"/admin/merchants/deliveryzone/{shop['zone'].pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "deliveryzone_form", {}, remove=["is_active"]))
    assert cached()["delivering"]["results"] == []


def test_zone_deleted_in_bulk(operator, shop, cached, django_capture_on_commit_callbacks):
    selected = {"action": "delete_selected", "_selected_action": [shop["zone"].pk], "post": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        saved(operator.post("/admin/merchants/deliveryzone/", selected))
    assert not DeliveryZone.objects.exists()
    assert cached()["delivering"]["results"] == []


def test_a_zone_too_large_is_refused_and_changes_nothing(
    operator, shop, django_capture_on_commit_callbacks
):
    url = f"/admin/merchants/deliveryzone/{shop['zone'].pk}/change/"
    point = shop["merchant"].location
    huge = factories.square(lat=point.y, lng=point.x, half_side_deg=1.0)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = submit(operator, url, "deliveryzone_form", {"area": huge.ewkt, "name": "Big"})
    assert response.status_code == 302
    assert response["Location"] == url
    assert "at most 5000 km²" in operator.get(url).content.decode()
    assert callbacks == []
    zone = DeliveryZone.objects.get(pk=shop["zone"].pk)
    assert zone.name == shop["zone"].name
    assert zone.area.equals(shop["zone"].area)


def test_a_product_stays_with_its_merchant(operator, shop):
    url = f"/admin/catalog/product/{shop['item'].pk}/change/"
    other = factories.merchant()
    saved(submit(operator, url, "product_form", {"merchant": other.pk, "title": "Soy Milk"}))
    item = Product.objects.get(pk=shop["item"].pk)
    assert (item.merchant_id, item.title) == (shop["merchant"].pk, "Soy Milk")


def test_opening_interval_added(operator, shop, cached, django_capture_on_commit_callbacks):
    merchant = shop["merchant"]
    assert cached()["delivering"]["results"][0]["open_now"] is True
    # Some other day than today and tomorrow, in the merchant's zone (UTC): closed now.
    weekday = (timezone.now().weekday() + 3) % 7
    data = {"merchant": merchant.pk, "weekday": weekday, "opens": "10:00", "closes": "11:00"}
    with django_capture_on_commit_callbacks(execute=True):
        saved(
            submit(operator, "/admin/merchants/openinginterval/add/", "openinginterval_form", data)
        )
    assert cached()["delivering"]["results"][0]["open_now"] is False
    # An overlapping one is refused by the hours service, and nothing changes.
    overlapping = {**data, "opens": "10:30", "closes": "12:00"}
    submit(operator, "/admin/merchants/openinginterval/add/", "openinginterval_form", overlapping)
    assert OpeningInterval.objects.filter(merchant=merchant).count() == 1


def test_timezone_changed(operator, shop, cached, django_capture_on_commit_callbacks):
    """The merchant's zone written on its page moves its hours to the new zone's clock."""
    merchant = shop["merchant"]
    now = timezone.now()
    # Every day, from an hour ago to two hours on, in UTC: open now, and closed now in
    # Tokyo's zone, nine hours ahead.
    opens, closes = (f"{(now + timedelta(hours=h)).hour:02}:00" for h in (-1, 2))
    with django_capture_on_commit_callbacks(execute=True):
        factories.hours(merchant, *((day, opens, closes) for day in range(7)), timezone="UTC")
    assert cached()["delivering"]["results"][0]["open_now"] is True
    url = f"/admin/merchants/merchant/{merchant.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        saved(submit(operator, url, "merchant_form", {"timezone": "Asia/Tokyo"}))
    detail = api_client_as(None).get(f"/api/v1/merchants/{merchant.pk}/").json()
    assert (detail["timezone"], detail["open_now"]) == ("Asia/Tokyo", False)
    assert cached()["delivering"]["results"][0]["open_now"] is False
