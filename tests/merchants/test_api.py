import pytest
from django.db import connection

from catalog.models import Product
from inventory.models import Inventory
from merchants.models import Address, DeliveryZone, Merchant
from tests import factories
from tests.market import ORDERS, build_market, order_body
from tests.rows import rows

pytestmark = pytest.mark.django_db

MERCHANTS = "/api/v1/merchants/"


def merchant_body(**overrides):
    body = {
        "name": "Corner Bakery",
        "description": "Bread and pastries",
        "phone": "+49 30 1234567",
        "category_ids": [],
        "address": {
            "line1": "Torstraße 1",
            "city": "Berlin",
            "postal_code": "10119",
            "country": "DE",
            "location": {"type": "Point", "coordinates": [13.401, 52.529]},
        },
    }
    body.update(overrides)
    return body


def square_polygon(lng: float, lat: float, d: float = 0.01) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lng - d, lat - d],
                [lng + d, lat - d],
                [lng + d, lat + d],
                [lng - d, lat + d],
                [lng - d, lat - d],
            ]
        ],
    }


def test_create_merchant_makes_caller_the_owner(as_user):
    owner = factories.user()
    bakery = factories.category(name="Bakery")
    response = as_user(owner).post(MERCHANTS, merchant_body(category_ids=[bakery.pk]))
    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] == owner.pk
    assert body["category_ids"] == [bakery.pk]
    assert body["location"] == {"type": "Point", "coordinates": [13.401, 52.529]}
    assert body["address"]["location"] == body["location"]
    assert body["is_active"] is True
    assert set(body) == {
        "id",
        "owner_id",
        "name",
        "description",
        "phone",
        "category_ids",
        "address",
        "location",
        "is_active",
        "created_at",
        "timezone",
        "open_now",
        "next_opening_at",
        "require_handover_code",
        "prep_time_s",
    }
    assert (body["timezone"], body["open_now"], body["next_opening_at"]) == ("UTC", True, None)
    assert (body["require_handover_code"], body["prep_time_s"]) == (False, 600)
    me = as_user(owner).get("/api/v1/auth/me/").json()
    assert me["merchant_id"] == body["id"]
    assert "merchant_owner" in me["roles"]


def test_a_user_owns_at_most_one_merchant(as_user):
    owner = factories.user()
    factories.merchant(owner=owner)
    response = as_user(owner).post(MERCHANTS, merchant_body())
    assert response.status_code == 403
    assert Merchant.objects.filter(owner=owner).count() == 1


def test_anonymous_cannot_create_a_merchant(as_user):
    assert as_user(None).post(MERCHANTS, merchant_body()).status_code == 401
    assert not Merchant.objects.exists()


@pytest.mark.parametrize(
    "location",
    [
        {"type": "Point", "coordinates": [200, 52]},
        {"type": "Point", "coordinates": [13, 95]},
        {"type": "Point", "coordinates": ["a", 52]},
        {"type": "LineString", "coordinates": [[13, 52], [14, 53]]},
        {"type": "Point"},
        "POINT(13 52)",
    ],
)
def test_bad_location_is_a_field_error(as_user, location):
    body = merchant_body()
    body["address"]["location"] = location
    response = as_user(factories.user()).post(MERCHANTS, body)
    assert response.status_code == 400
    assert "location" in response.json()["address"]
    assert not Merchant.objects.exists()


def test_list_shows_active_merchants_with_filters(as_user):
    grocery = factories.category(name="Grocery")
    fresh = factories.merchant(name="Fresh Greens", categories=[grocery])
    factories.merchant(name="Fresh Closed", categories=[grocery], is_active=False)
    factories.merchant(name="Hardware Hut")
    client = as_user(None)

    names = [m["name"] for m in client.get(MERCHANTS).json()["results"]]
    assert names == ["Fresh Greens", "Hardware Hut"]

    by_category = client.get(MERCHANTS, {"category": grocery.slug}).json()
    assert [m["id"] for m in by_category["results"]] == [fresh.pk]
    by_category_id = client.get(MERCHANTS, {"category": str(grocery.pk)}).json()
    assert [m["id"] for m in by_category_id["results"]] == [fresh.pk]
    by_name = client.get(MERCHANTS, {"q": "hut"}).json()
    assert [m["name"] for m in by_name["results"]] == ["Hardware Hut"]


def test_list_has_the_contract_page_shape(as_user):
    for _ in range(3):
        factories.merchant()
    body = as_user(None).get(MERCHANTS, {"page_size": 2, "page": 2}).json()
    assert body["count"] == 3
    assert body["page"] == 2
    assert body["page_size"] == 2
    assert body["total_pages"] == 2
    assert body["next"] is None
    assert body["previous"] is not None
    assert len(body["results"]) == 1


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page": "0"}, 400),
        ({"page": "abc"}, 400),
        ({"page": "99"}, 404),
        ({"page_size": "0"}, 400),
        ({"page_size": "x"}, 400),
    ],
)
def test_bad_pages_are_client_errors(as_user, params, status):
    factories.merchant()
    response = as_user(None).get(MERCHANTS, params)
    assert response.status_code == status
    assert response.json()


def test_page_size_is_capped_at_100(as_user):
    factories.merchant()
    assert as_user(None).get(MERCHANTS, {"page_size": 500}).json()["page_size"] == 100


def test_list_runs_a_fixed_number_of_queries(as_user, django_assert_num_queries):
    tag = factories.category()
    for _ in range(12):
        factories.merchant(categories=[tag])
    client = as_user(None)
    # the page with its count (the address joined, the category ids in an array subquery)
    with django_assert_num_queries(1):
        page = client.get(MERCHANTS, {"page_size": 2}).json()["results"]
    assert len(page) == 2
    assert all(merchant["category_ids"] == [tag.pk] for merchant in page)
    with django_assert_num_queries(1):
        assert len(client.get(MERCHANTS, {"page_size": 12}).json()["results"]) == 12


def test_inactive_merchant_is_hidden_from_public_but_not_from_its_owner(as_user):
    owner = factories.user()
    closed = factories.merchant(owner=owner, is_active=False)
    assert as_user(None).get(f"{MERCHANTS}{closed.pk}/").status_code == 404
    assert as_user(owner).get(f"{MERCHANTS}{closed.pk}/").status_code == 200


def test_owner_moves_the_address_and_the_merchant_location_follows(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    response = as_user(owner).patch(
        f"{MERCHANTS}{shop.pk}/",
        {"address": {"location": {"type": "Point", "coordinates": [13.3, 52.4]}}},
    )
    assert response.status_code == 200
    assert response.json()["location"]["coordinates"] == [13.3, 52.4]
    shop.refresh_from_db()
    assert (shop.location.x, shop.location.y) == (13.3, 52.4)
    assert shop.address.line1 == "Alexanderplatz 1"


def test_database_keeps_merchant_location_equal_to_address(as_user):
    shop = factories.merchant()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE merchants_address SET location = 'SRID=4326;POINT(10 50)' WHERE id = %s",
            [shop.address_id],
        )
        cursor.execute("UPDATE merchants_merchant SET location = 'SRID=4326;POINT(0 0)'")
    shop.refresh_from_db()
    assert (shop.location.x, shop.location.y) == (10, 50)


def test_put_replaces_the_merchant(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    response = as_user(owner).put(f"{MERCHANTS}{shop.pk}/", merchant_body(name="Renamed"))
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["address"]["line1"] == "Torstraße 1"


def test_the_owner_sets_require_handover_code_by_post_patch_and_put(as_user):
    owner = factories.user()
    created = as_user(owner).post(MERCHANTS, merchant_body(require_handover_code=True))
    assert created.status_code == 201
    assert created.json()["require_handover_code"] is True
    url = f"{MERCHANTS}{created.json()['id']}/"
    patched = as_user(owner).patch(url, {"require_handover_code": False}, format="json")
    assert patched.json()["require_handover_code"] is False
    assert (
        as_user(owner)
        .patch(url, {"require_handover_code": True}, format="json")
        .json()["require_handover_code"]
    )
    # PUT replaces the merchant: left out, the setting is its default again.
    assert as_user(owner).put(url, merchant_body()).json()["require_handover_code"] is False
    assert Merchant.objects.get(pk=created.json()["id"]).require_handover_code is False


def test_an_operator_sets_require_handover_code_and_others_may_not(as_user):
    shop = factories.merchant()
    url = f"{MERCHANTS}{shop.pk}/"
    body = {"require_handover_code": True}
    assert as_user(factories.user()).patch(url, body, format="json").status_code == 403
    assert not Merchant.objects.get(pk=shop.pk).require_handover_code
    operator = as_user(factories.user(is_staff=True))
    assert operator.patch(url, body, format="json").json()["require_handover_code"] is True
    assert as_user(factories.user()).get(url).json()["require_handover_code"] is True


def test_require_handover_code_must_be_a_boolean(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    url = f"{MERCHANTS}{shop.pk}/"
    response = as_user(owner).patch(url, {"require_handover_code": "maybe"}, format="json")
    assert response.status_code == 400
    assert "require_handover_code" in response.json()


def test_the_owner_sets_the_timezone_by_post_and_patch_and_a_put_without_it_keeps_it(as_user):
    owner = factories.user()
    created = as_user(owner).post(MERCHANTS, merchant_body(timezone="Europe/Berlin"), format="json")
    assert created.status_code == 201
    assert created.json()["timezone"] == "Europe/Berlin"
    url = f"{MERCHANTS}{created.json()['id']}/"
    assert as_user(None).get(f"{url}hours/").json() == {"timezone": "Europe/Berlin", "weekly": []}
    patched = as_user(owner).patch(url, {"timezone": "Asia/Tokyo"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["timezone"] == "Asia/Tokyo"
    # Its hours are read in it: a PUT of the merchant that leaves it out does not move them.
    assert as_user(owner).put(url, merchant_body(), format="json").json()["timezone"] == (
        "Asia/Tokyo"
    )
    assert Merchant.objects.get(pk=created.json()["id"]).timezone == "Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CET", "", None, 5])
def test_a_merchant_with_an_unknown_timezone_is_refused(as_user, zone):
    owner = factories.user()
    response = as_user(owner).post(MERCHANTS, merchant_body(timezone=zone), format="json")
    assert response.status_code == 400
    assert "timezone" in response.json()
    assert not Merchant.objects.exists()
    shop = factories.merchant(owner=owner)
    response = as_user(owner).patch(f"{MERCHANTS}{shop.pk}/", {"timezone": zone}, format="json")
    assert response.status_code == 400
    assert Merchant.objects.get(pk=shop.pk).timezone == "UTC"


def test_a_timezone_written_with_the_merchant_moves_its_open_state(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    # Open every day from 06:00 to 18:00: read in UTC+12 rather than UTC, it is open at
    # each instant it was closed at, and closed at each it was open at.
    factories.hours(shop, *((day, "06:00", "18:00") for day in range(7)), timezone="UTC")
    url = f"{MERCHANTS}{shop.pk}/"
    before = as_user(None).get(url).json()["open_now"]
    response = as_user(owner).patch(url, {"timezone": "Etc/GMT-12"}, format="json")
    assert response.json()["open_now"] is not before
    assert as_user(None).get(url).json()["open_now"] is not before


def test_delete_removes_the_merchant_and_its_zones(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    factories.zone(merchant=shop)
    assert as_user(owner).delete(f"{MERCHANTS}{shop.pk}/").status_code == 204
    assert not Merchant.objects.filter(pk=shop.pk).exists()
    assert not DeliveryZone.objects.filter(merchant_id=shop.pk).exists()


def test_a_merchant_with_orders_is_not_deleted(as_user):
    market = build_market(as_user)
    shop = market["shop"]
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)), format="json")
    assert placed.status_code == 201, placed.content
    before = rows(Merchant, Address, Product, DeliveryZone, Inventory)
    response = as_user(shop.owner).delete(f"{MERCHANTS}{shop.pk}/")
    # Its orders are records: deactivating it (is_active=false) is how it leaves.
    assert response.status_code == 409
    assert "detail" in response.json()
    assert rows(Merchant, Address, Product, DeliveryZone, Inventory) == before


# Delivery zones


def zones_url(merchant_id: int) -> str:
    return f"{MERCHANTS}{merchant_id}/delivery-zones/"


def test_owner_creates_a_polygon_zone_stored_as_multipolygon(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    response = as_user(owner).post(
        zones_url(shop.pk),
        {
            "name": "Centre",
            "area": square_polygon(13.405, 52.52),
            "delivery_fee": "2.50",
            "min_order_amount": "15.00",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["area"]["type"] == "MultiPolygon"
    assert body["delivery_fee"] == "2.50"
    assert body["min_order_amount"] == "15.00"
    assert body["merchant_id"] == shop.pk
    assert DeliveryZone.objects.get(pk=body["id"]).area.geom_type == "MultiPolygon"


def test_multipolygon_zone_is_accepted(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    a = square_polygon(13.40, 52.52)["coordinates"]
    b = square_polygon(13.50, 52.52)["coordinates"]
    response = as_user(owner).post(
        zones_url(shop.pk),
        {
            "name": "Two parts",
            "area": {"type": "MultiPolygon", "coordinates": [a, b]},
            "delivery_fee": "1.00",
        },
    )
    assert response.status_code == 201
    assert len(response.json()["area"]["coordinates"]) == 2


BAD_AREAS = {
    "self-intersection": {
        "type": "Polygon",
        "coordinates": [[[13.4, 52.5], [13.5, 52.6], [13.5, 52.5], [13.4, 52.6], [13.4, 52.5]]],
    },
    "unclosed ring": {
        "type": "Polygon",
        "coordinates": [[[13.4, 52.5], [13.5, 52.5], [13.5, 52.6], [13.4, 52.6]]],
    },
    "fewer than 4 positions": {
        "type": "Polygon",
        "coordinates": [[[13.4, 52.5], [13.5, 52.5], [13.4, 52.5]]],
    },
    "longitude out of range": {
        "type": "Polygon",
        "coordinates": [[[13.4, 52.5], [190, 52.5], [13.5, 52.6], [13.4, 52.5]]],
    },
    "latitude out of range": {
        "type": "Polygon",
        "coordinates": [[[13.4, 52.5], [13.5, 91], [13.5, 52.6], [13.4, 52.5]]],
    },
    "point": {"type": "Point", "coordinates": [13.4, 52.5]},
    "linestring": {"type": "LineString", "coordinates": [[13.4, 52.5], [13.5, 52.6]]},
    "over 5000 km2": square_polygon(13.4, 52.5, d=0.5),
    "not an object": "POLYGON((0 0, 1 0, 1 1, 0 0))",
    "empty": {"type": "Polygon", "coordinates": []},
}


@pytest.mark.parametrize("case", sorted(BAD_AREAS))
def test_invalid_zone_area_is_a_field_error_and_stores_nothing(as_user, case):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    body = {"name": "Bad", "area": BAD_AREAS[case], "delivery_fee": "1.00"}
    response = as_user(owner).post(zones_url(shop.pk), body)
    assert response.status_code == 400
    assert "area" in response.json()
    assert not DeliveryZone.objects.exists()


def test_nan_coordinates_are_refused(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    raw = (
        '{"name": "Bad", "delivery_fee": "1.00", "area": {"type": "Polygon", "coordinates":'
        " [[[13.4, 52.5], [NaN, 52.5], [13.5, 52.6], [13.4, 52.5]]]}}"
    )
    response = as_user(owner).post(zones_url(shop.pk), data=raw, content_type="application/json")
    assert response.status_code == 400
    assert not DeliveryZone.objects.exists()


def test_zone_fee_must_not_be_negative(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    response = as_user(owner).post(
        zones_url(shop.pk),
        {"name": "Neg", "area": square_polygon(13.4, 52.5), "delivery_fee": "-1.00"},
    )
    assert response.status_code == 400
    assert "delivery_fee" in response.json()
    assert not DeliveryZone.objects.exists()


def test_public_zone_list_shows_only_active_zones(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    active = factories.zone(merchant=shop)
    factories.zone(merchant=shop, is_active=False)
    public = as_user(None).get(zones_url(shop.pk)).json()["results"]
    assert [z["id"] for z in public] == [active.pk]
    assert len(as_user(owner).get(zones_url(shop.pk)).json()["results"]) == 2


def test_zone_update_and_delete(as_user):
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    existing = factories.zone(merchant=shop)
    url = f"{zones_url(shop.pk)}{existing.pk}/"
    client = as_user(owner)
    assert client.patch(url, {"delivery_fee": "4.00"}).json()["delivery_fee"] == "4.00"
    before = rows(DeliveryZone)
    oversized = client.patch(url, {"area": square_polygon(13.4, 52.5, d=0.5)})
    assert oversized.status_code == 400
    assert "area" in oversized.json()
    assert rows(DeliveryZone) == before
    assert client.delete(url).status_code == 204
    assert not DeliveryZone.objects.filter(pk=existing.pk).exists()


def test_zone_of_another_merchant_is_not_reachable_through_mine(as_user):
    owner = factories.user()
    mine = factories.merchant(owner=owner)
    theirs = factories.zone(merchant=factories.merchant())
    response = as_user(owner).get(f"{zones_url(mine.pk)}{theirs.pk}/")
    assert response.status_code == 404


def test_list_and_detail_give_every_category_id_in_order(as_user):
    first, second, third = factories.category(), factories.category(), factories.category()
    shop = factories.merchant(categories=[third, first])
    bare = factories.merchant()
    client = as_user(None)
    listed = {row["id"]: row["category_ids"] for row in client.get(MERCHANTS).json()["results"]}
    assert listed[shop.pk] == [first.pk, third.pk]
    assert listed[bare.pk] == []
    assert client.get(f"{MERCHANTS}{shop.pk}/").json()["category_ids"] == [first.pk, third.pk]
    assert second.pk not in listed[shop.pk]
