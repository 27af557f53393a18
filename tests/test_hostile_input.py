"""Input schemathesis is unlikely to invent: each gets a 4xx in the contract's shape and
changes nothing."""

import io
import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from catalog.models import Product, ProductCategory
from delivery.models import Courier
from delivery.services import courier_create
from events.models import WebhookEndpoint
from events.services import webhook_create
from geomarket.accounts.models import User
from geomarket.api.fields import GIVEN_MORE_THAN_ONCE
from geomarket.api.parsers import MAX_JSON_DEPTH, JSONParser
from inventory.models import Inventory
from merchants.models import Closure, DeliveryZone, Merchant, OpeningInterval, SlotPlan
from orders.models import Order
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.rows import rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e308", "abc", "", "0x10"])
@pytest.mark.parametrize("field", ["lat", "lng"])
def test_non_numbers_for_coordinates(api_client, field, value):
    params = {"lat": "52.5", "lng": "13.4", field: value}
    response = api_client.get("/api/v1/products/nearby/", params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("radius", ["0", "-1", "1e9", "50000.01"])
def test_bad_radius(api_client, radius):
    response = api_client.get(
        "/api/v1/merchants/nearby/", {"lat": 52.5, "lng": 13.4, "radius": radius}
    )
    assert response.status_code == 400
    assert "radius" in response.json()


def test_polygon_with_100000_vertices_is_refused(as_user, settings):
    settings.REQUEST_BODY_MAX_BYTES = 50 * 1024 * 1024  # reach the geometry check itself
    owner = factories.user()
    shop = factories.merchant(owner=owner)
    ring = [[13.0 + i * 1e-6, 52.0 + (i % 2) * 1e-6] for i in range(99_999)] + [[13.0, 52.0]]
    response = as_user(owner).post(
        f"/api/v1/merchants/{shop.pk}/delivery-zones/",
        {
            "name": "huge",
            "delivery_fee": "1.00",
            "area": {"type": "Polygon", "coordinates": [ring]},
        },
    )
    assert response.status_code == 400
    assert "area" in response.json()
    assert not DeliveryZone.objects.filter(merchant=shop).exists()


@pytest.mark.parametrize(
    ("page", "status"),
    [("0", 400), ("-1", 400), ("1000000000", 404), ("10000000000", 400), ("1.5", 400)],
)
def test_page_numbers(api_client, page, status):
    factories.category()
    response = api_client.get("/api/v1/categories/", {"page": page})
    assert response.status_code == status
    assert response.json()


@pytest.mark.parametrize("quantity", [0, -1, 1000, 10**12, 1.5, None, "many"])
def test_order_quantities(market, quantity):
    body = order_body(market, (market["bread"], 1))
    body["items"][0]["quantity"] = quantity
    response = market["client"].post(ORDERS, body)
    assert response.status_code == 400
    assert "items" in response.json()
    assert not Order.objects.filter(merchant=market["shop"]).exists()


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "'); DROP TABLE catalog_product; --",
        "%_%",
        "\\\\",
        "ünïcödé 🚲",
        "\u202e\u0000",
        "a" * 200,
        "<script>alert(1)</script>",
    ],
)
def test_sql_and_unicode_in_queries_are_only_text(api_client, q):
    shop = factories.merchant()
    factories.product(merchant=shop, title="Plain Bread")
    search = api_client.get("/api/v1/search/products/", {"q": q})
    suggest = api_client.get("/api/v1/search/suggest/", {"q": q})
    assert search.status_code in (200, 400)
    assert suggest.status_code in (200, 400)
    assert Product.objects.filter(title="Plain Bread").exists()


def test_ten_megabyte_body_is_413(market):
    payload = json.dumps({**order_body(market, (market["bread"], 2)), "pad": "x" * 10_000_000})
    response = market["client"].post(ORDERS, data=payload, content_type="application/json")
    assert response.status_code == 413
    assert "detail" in response.json()
    assert not Order.objects.filter(merchant=market["shop"]).exists()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ],
)
def test_wrong_content_types_are_415(market, content_type):
    response = market["client"].post(ORDERS, data="merchant_id=1", content_type=content_type)
    assert response.status_code == 415
    assert "detail" in response.json()
    assert not Order.objects.filter(merchant=market["shop"]).exists()


# Characters that `str.isdigit()` calls digits although `int()` refuses them, and digits of
# other scripts that `int()` reads (both of these as 1). Integers are ASCII digits only.
NOT_INT_DIGITS = ["\u00b2", "\u2460"]
INT_READABLE_DIGITS = ["\u0661", "\uff11"]
HUGE = 10**400  # beyond any float: float() raises OverflowError


@pytest.fixture(scope="module")
def world(module_db):
    """The market with an operator, a courier and an order, a client for each role, and
    the value of each path parameter: made once for the module's few hundred tests, each
    of which undoes its own writes."""
    as_user = api_client_as
    market = build_market(as_user)
    operator = factories.user(is_staff=True)
    courier_user = factories.user()
    courier = courier_create(
        user=courier_user, name="Hostile Courier", vehicle="bike", capacity=1, status="available"
    )
    placed = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert placed.status_code == 201, placed.content
    category = factories.category()
    return {
        **market,
        "operator": as_user(operator),
        "courier_client": as_user(courier_user),
        "category": category,
        "path": {
            "merchant_id": market["shop"].pk,
            "zone_id": market["zone"].pk,
            "category_id": category.pk,
            "product_id": market["bread"].pk,
            "inventory_id": Inventory.objects.get(product=market["bread"]).pk,
            "order_id": placed.json()["id"],
            "courier_id": courier.pk,
            "webhook_id": webhook_create(
                created_by=market["owner"],
                merchant_id=market["shop"].pk,
                url=WEBHOOK_URL,
                event_types=[],
            ).pk,
        },
    }


def _call(world, as_user, caller, method, path, **kwargs):
    client = as_user(None) if caller is None else world[caller]
    return getattr(client, method)(path.format(**world["path"]), **kwargs)


def _send(world, as_user, caller, method, path, body: str):
    return _call(world, as_user, caller, method, path, data=body, content_type="application/json")


def _snapshot():
    """What a refused write must leave as it was."""
    return rows(
        Order,
        Merchant,
        DeliveryZone,
        Product,
        ProductCategory,
        Inventory,
        Courier,
        User,
        OpeningInterval,
        Closure,
        SlotPlan,
        WebhookEndpoint,
    )


def _schema():
    return SchemaGenerator().get_schema(request=None, public=True)


NEAR = {"lat": "52.52", "lng": "13.405"}
# A public address: webhooks to it pass the address check; nothing here delivers to it.
WEBHOOK_URL = "https://93.184.215.14/hook"

# (caller, path, other parameters, parameter): every integer or category query parameter
# of the API; `test_every_integer_query_parameter_is_here` holds this list to the schema.
ID_PARAMETERS = [
    ("operator", "/api/v1/products/nearby/", NEAR, "category"),
    ("operator", "/api/v1/products/nearby/", NEAR, "limit"),
    ("operator", "/api/v1/products/", {}, "category"),
    ("operator", "/api/v1/products/", {}, "merchant_id"),
    ("operator", "/api/v1/products/", {}, "page"),
    ("operator", "/api/v1/products/", {}, "page_size"),
    ("operator", "/api/v1/search/products/", {}, "category"),
    ("operator", "/api/v1/search/products/", {}, "merchant_id"),
    ("operator", "/api/v1/search/products/", {}, "page"),
    ("operator", "/api/v1/search/products/", {}, "page_size"),
    ("operator", "/api/v1/merchants/", {}, "category"),
    ("operator", "/api/v1/merchants/", {}, "page"),
    ("operator", "/api/v1/merchants/", {}, "page_size"),
    ("operator", "/api/v1/merchants/nearby/", NEAR, "limit"),
    ("operator", "/api/v1/merchants/delivering-to/", NEAR, "limit"),
    ("operator", "/api/v1/merchants/{merchant_id}/delivery-zones/", {}, "page"),
    ("operator", "/api/v1/merchants/{merchant_id}/delivery-zones/", {}, "page_size"),
    ("operator", "/api/v1/merchants/{merchant_id}/closures/", {}, "page"),
    ("operator", "/api/v1/merchants/{merchant_id}/closures/", {}, "page_size"),
    ("operator", "/api/v1/merchants/{merchant_id}/inventory/", {}, "page"),
    ("operator", "/api/v1/merchants/{merchant_id}/inventory/", {}, "page_size"),
    ("operator", "/api/v1/merchants/{merchant_id}/orders/", {}, "page"),
    ("operator", "/api/v1/merchants/{merchant_id}/orders/", {}, "page_size"),
    ("operator", "/api/v1/categories/", {}, "page"),
    ("operator", "/api/v1/categories/", {}, "page_size"),
    ("operator", "/api/v1/inventory/", {}, "merchant_id"),
    ("operator", "/api/v1/inventory/", {}, "product_id"),
    ("operator", "/api/v1/inventory/", {}, "page"),
    ("operator", "/api/v1/inventory/", {}, "page_size"),
    ("operator", "/api/v1/orders/", {}, "merchant_id"),
    ("operator", "/api/v1/orders/", {}, "page"),
    ("operator", "/api/v1/orders/", {}, "page_size"),
    ("operator", "/api/v1/orders/stats/", {}, "merchant_id"),
    ("operator", "/api/v1/orders/{order_id}/courier-candidates/", {}, "limit"),
    ("operator", "/api/v1/orders/{order_id}/incidents/", {}, "page"),
    ("operator", "/api/v1/orders/{order_id}/incidents/", {}, "page_size"),
    ("operator", "/api/v1/couriers/", {}, "page"),
    ("operator", "/api/v1/couriers/", {}, "page_size"),
    ("courier_client", "/api/v1/couriers/me/orders/", {}, "page"),
    ("courier_client", "/api/v1/couriers/me/orders/", {}, "page_size"),
    ("operator", "/api/v1/analytics/top-products/", {}, "merchant_id"),
    ("operator", "/api/v1/analytics/top-products/", {}, "top"),
    ("operator", "/api/v1/analytics/revenue/", {}, "merchant_id"),
    ("operator", "/api/v1/events/", {}, "limit"),
    ("operator", "/api/v1/webhooks/", {}, "page"),
    ("operator", "/api/v1/webhooks/", {}, "page_size"),
    ("operator", "/api/v1/webhooks/{webhook_id}/deliveries/", {}, "page"),
    ("operator", "/api/v1/webhooks/{webhook_id}/deliveries/", {}, "page_size"),
]


def test_every_integer_query_parameter_is_here():
    in_schema = {
        (path, parameter["name"])
        for path, operations in _schema()["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and (parameter["schema"].get("type") == "integer" or parameter["name"] == "category")
    }
    assert in_schema <= {(path, name) for _, path, _, name in ID_PARAMETERS}


@pytest.mark.parametrize("digit", NOT_INT_DIGITS + INT_READABLE_DIGITS)
@pytest.mark.parametrize(
    "path", sorted({path for _, path, _, name in ID_PARAMETERS if name == "category"})
)
def test_category_in_digits_other_than_ascii_is_400(world, as_user, path, digit):
    params = {**(NEAR if "nearby" in path else {}), "category": digit}
    response = _call(world, as_user, "operator", "get", path, data=params)
    assert response.status_code == 400
    assert list(response.json()) == ["category"]


@pytest.mark.parametrize("digit", INT_READABLE_DIGITS)
@pytest.mark.parametrize(("caller", "path", "params", "name"), ID_PARAMETERS)
def test_integer_parameters_in_digits_other_than_ascii_are_400(
    world, as_user, caller, path, params, name, digit
):
    plain = _call(world, as_user, caller, "get", path, data={**params, name: "1"})
    assert plain.status_code == 200
    response = _call(world, as_user, caller, "get", path, data={**params, name: digit})
    assert response.status_code == 400
    assert list(response.json()) == [name]


@pytest.mark.parametrize("value", [" 1", "+1", "1_0", "1.0", str(2**63)])
@pytest.mark.parametrize(("caller", "path", "params", "name"), ID_PARAMETERS)
def test_integer_parameters_other_than_plain_ascii_digits_are_400(
    world, as_user, caller, path, params, name, value
):
    response = _call(world, as_user, caller, "get", path, data={**params, name: value})
    # A category may also be a slug, and text is trimmed: " 1" is the id 1.
    if name == "category" and value in (" 1", "1_0"):
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert list(response.json()) == [name]


@pytest.mark.parametrize(("caller", "path", "params", "name"), ID_PARAMETERS)
def test_a_parameter_given_twice_is_400_naming_it(world, as_user, caller, path, params, name):
    # Read as its last copy, `?limit=1&limit=2` would be answered as if the first were
    # not there.
    response = _call(world, as_user, caller, "get", path, data={**params, name: ["1", "2"]})
    assert response.status_code == 400
    assert response.json() == {name: [GIVEN_MORE_THAN_ONCE]}


# (caller, path, other parameters) of every read that answers in the format `format` names.
FORMAT_READS = [
    ("operator", "/api/v1/analytics/merchants/", {}),
    ("operator", "/api/v1/analytics/revenue/", {}),
    ("operator", "/api/v1/analytics/top-products/", {}),
    ("operator", "/api/v1/orders/analytics/", {}),
    (None, "/api/v1/merchants/{merchant_id}/delivery-zones/", {}),
    (None, "/api/v1/merchants/delivering-to/", NEAR),
    (None, "/api/v1/merchants/nearby/", NEAR),
    (None, "/api/v1/products/nearby/", NEAR),
]


def test_every_read_with_a_format_is_here():
    in_schema = {
        path
        for path, operations in _schema()["paths"].items()
        for method, operation in operations.items()
        if method == "get"
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] == "format"
    }
    assert in_schema == {path for _, path, _ in FORMAT_READS}


@pytest.mark.parametrize(("caller", "path", "params"), FORMAT_READS)
def test_a_format_given_twice_is_400_naming_it(world, as_user, caller, path, params):
    # Read as its last copy, `?format=csv&format=json` would be answered in JSON.
    formats = ["csv" if "analytics" in path else "geojson", "json"]
    response = _call(world, as_user, caller, "get", path, data={**params, "format": formats})
    assert response.status_code == 400
    assert response.json() == {"format": [GIVEN_MORE_THAN_ONCE]}
    once = _call(world, as_user, caller, "get", path, data={**params, "format": formats[0]})
    assert once.status_code == 200


# (caller, method, path) of every request that takes a JSON body.
JSON_ENDPOINTS = [
    (None, "post", "/api/v1/auth/register/"),
    (None, "post", "/api/v1/auth/token/"),
    ("operator", "post", "/api/v1/merchants/"),
    ("operator", "put", "/api/v1/merchants/{merchant_id}/"),
    ("operator", "patch", "/api/v1/merchants/{merchant_id}/"),
    ("operator", "post", "/api/v1/merchants/{merchant_id}/delivery-zones/"),
    ("operator", "put", "/api/v1/merchants/{merchant_id}/delivery-zones/{zone_id}/"),
    ("operator", "patch", "/api/v1/merchants/{merchant_id}/delivery-zones/{zone_id}/"),
    ("operator", "put", "/api/v1/merchants/{merchant_id}/hours/"),
    ("operator", "post", "/api/v1/merchants/{merchant_id}/closures/"),
    ("operator", "put", "/api/v1/merchants/{merchant_id}/slot-plan/"),
    ("operator", "post", "/api/v1/categories/"),
    ("operator", "put", "/api/v1/categories/{category_id}/"),
    ("operator", "patch", "/api/v1/categories/{category_id}/"),
    ("operator", "post", "/api/v1/products/"),
    ("operator", "put", "/api/v1/products/{product_id}/"),
    ("operator", "patch", "/api/v1/products/{product_id}/"),
    ("operator", "post", "/api/v1/inventory/"),
    ("operator", "put", "/api/v1/inventory/{inventory_id}/"),
    ("operator", "patch", "/api/v1/inventory/{inventory_id}/"),
    ("operator", "post", "/api/v1/inventory/{inventory_id}/adjust/"),
    ("client", "post", "/api/v1/orders/"),
    ("operator", "post", "/api/v1/orders/{order_id}/status/"),
    ("operator", "post", "/api/v1/orders/{order_id}/incidents/"),
    ("operator", "post", "/api/v1/orders/priority-assignment/"),
    ("operator", "post", "/api/v1/couriers/"),
    ("operator", "patch", "/api/v1/couriers/{courier_id}/"),
    ("courier_client", "patch", "/api/v1/couriers/me/"),
    ("courier_client", "post", "/api/v1/couriers/me/location/"),
    (None, "post", "/api/v1/delivery/eta/"),
    ("operator", "post", "/api/v1/webhooks/"),
    ("operator", "patch", "/api/v1/webhooks/{webhook_id}/"),
    ("operator", "post", "/api/v1/webhooks/{webhook_id}/replay/"),
]


def test_every_request_with_a_body_is_here():
    in_schema = {
        (method, path)
        for path, operations in _schema()["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    assert in_schema <= {(method, path) for _, method, path in JSON_ENDPOINTS}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
@pytest.mark.parametrize(("caller", "method", "path"), JSON_ENDPOINTS)
def test_deeply_nested_json_is_400(world, as_user, caller, method, path, depth):
    before = _snapshot()
    body = '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    response = _send(world, as_user, caller, method, path, body)
    assert response.status_code == 400
    assert "nested deeper than" in response.json()["detail"]
    assert _snapshot() == before


def test_json_nested_to_the_limit_is_read():
    text = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert JSONParser().parse(io.BytesIO(text.encode())) == json.loads(text)


# GeoJSON points and areas; `*` stands for the huge coordinate.
_POINT = {"type": "Point", "coordinates": ["*", 52.5]}
_ADDRESS = {"line1": "Torstr. 1", "city": "Berlin", "postal_code": "10119", "location": _POINT}
_AREA = {"type": "Polygon", "coordinates": [[["*", 52.5], [13.5, 52.5], [13.5, 52.6], ["*", 52.5]]]}
_ZONE = {"name": "Huge", "delivery_fee": "1.00", "area": _AREA}
GEOJSON_CASES = [
    ("client", "post", ORDERS, {"delivery_address": _ADDRESS}, "delivery_address"),
    ("operator", "post", "/api/v1/merchants/", {"name": "Huge", "address": _ADDRESS}, "address"),
    (
        "operator",
        "put",
        "/api/v1/merchants/{merchant_id}/",
        {"name": "H", "address": _ADDRESS},
        "address",
    ),
    ("operator", "patch", "/api/v1/merchants/{merchant_id}/", {"address": _ADDRESS}, "address"),
    (
        "operator",
        "post",
        "/api/v1/merchants/{merchant_id}/delivery-zones/",
        _ZONE,
        "area",
    ),
    (
        "operator",
        "put",
        "/api/v1/merchants/{merchant_id}/delivery-zones/{zone_id}/",
        _ZONE,
        "area",
    ),
    (
        "operator",
        "patch",
        "/api/v1/merchants/{merchant_id}/delivery-zones/{zone_id}/",
        {"area": _AREA},
        "area",
    ),
]


@pytest.mark.parametrize("coordinate", ["longitude", "latitude"])
@pytest.mark.parametrize(("caller", "method", "path", "body", "field"), GEOJSON_CASES)
def test_huge_integers_in_geojson_are_400(
    world, as_user, caller, method, path, body, field, coordinate
):
    text = json.dumps(body)
    if coordinate == "latitude":
        text = text.replace('["*", 52.5]', '[13.4, "*"]')
    if path == ORDERS:
        text = json.dumps({**order_body(world, (world["bread"], 2)), **json.loads(text)})
    before = _snapshot()
    response = _send(world, as_user, caller, method, path, text.replace('"*"', str(HUGE)))
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert _snapshot() == before


# `#` stands for the number; `field` is the error's key.
_PLAN = {"slot_minutes": 30, "capacity": 10, "lead_minutes": 45, "horizon_days": 3}
NUMBER_CASES = [
    *(
        (
            "operator",
            "put",
            "/api/v1/merchants/{merchant_id}/slot-plan/",
            {**_PLAN, name: "#"},
            name,
        )
        for name in _PLAN
    ),
    (
        "operator",
        "put",
        "/api/v1/merchants/{merchant_id}/hours/",
        {"timezone": "UTC", "weekly": [{"weekday": "#", "opens": "08:00", "closes": "12:00"}]},
        "weekly",
    ),
    ("client", "post", ORDERS, {"merchant_id": "#"}, "merchant_id"),
    ("client", "post", ORDERS, {"items": [{"product_id": "#", "quantity": 1}]}, "items"),
    ("client", "post", ORDERS, {"items": [{"product_id": 1, "quantity": "#"}]}, "items"),
    ("operator", "post", "/api/v1/orders/priority-assignment/", {"order_ids": ["#"]}, "order_ids"),
    (
        "operator",
        "post",
        "/api/v1/orders/priority-assignment/",
        {"max_distance_m": "#"},
        "max_distance_m",
    ),
    ("operator", "post", "/api/v1/inventory/{inventory_id}/adjust/", {"delta": "#"}, "delta"),
    ("operator", "post", "/api/v1/inventory/", {"product_id": "#"}, "product_id"),
    ("operator", "post", "/api/v1/inventory/", {"quantity": "#"}, "quantity"),
    ("operator", "post", "/api/v1/inventory/", {"low_stock_threshold": "#"}, "low_stock_threshold"),
    ("operator", "put", "/api/v1/inventory/{inventory_id}/", {"quantity": "#"}, "quantity"),
    (
        "operator",
        "put",
        "/api/v1/inventory/{inventory_id}/",
        {"low_stock_threshold": "#"},
        "low_stock_threshold",
    ),
    ("operator", "patch", "/api/v1/inventory/{inventory_id}/", {"quantity": "#"}, "quantity"),
    (
        "operator",
        "patch",
        "/api/v1/inventory/{inventory_id}/",
        {"low_stock_threshold": "#"},
        "low_stock_threshold",
    ),
    ("operator", "post", "/api/v1/products/", {"merchant_id": "#"}, "merchant_id"),
    ("operator", "post", "/api/v1/products/", {"category_id": "#"}, "category_id"),
    ("operator", "put", "/api/v1/products/{product_id}/", {"category_id": "#"}, "category_id"),
    ("operator", "patch", "/api/v1/products/{product_id}/", {"category_id": "#"}, "category_id"),
    ("operator", "post", "/api/v1/merchants/", {"category_ids": ["#"]}, "category_ids"),
    (
        "operator",
        "put",
        "/api/v1/merchants/{merchant_id}/",
        {"category_ids": ["#"]},
        "category_ids",
    ),
    (
        "operator",
        "patch",
        "/api/v1/merchants/{merchant_id}/",
        {"category_ids": ["#"]},
        "category_ids",
    ),
    ("operator", "post", "/api/v1/couriers/", {"user_id": "#"}, "user_id"),
    ("operator", "post", "/api/v1/couriers/", {"capacity": "#"}, "capacity"),
    ("operator", "patch", "/api/v1/couriers/{courier_id}/", {"capacity": "#"}, "capacity"),
    ("courier_client", "post", "/api/v1/couriers/me/location/", {"lat": "#", "lng": 13.4}, "lat"),
    ("courier_client", "post", "/api/v1/couriers/me/location/", {"lat": 52.5, "lng": "#"}, "lng"),
    (
        "operator",
        "post",
        "/api/v1/webhooks/",
        {"url": WEBHOOK_URL, "merchant_id": "#"},
        "merchant_id",
    ),
    *(
        (
            "courier_client",
            "post",
            "/api/v1/couriers/me/location/",
            {"lat": 52.5, "lng": 13.4, name: "#"},
            name,
        )
        for name in ("heading", "speed_mps", "accuracy_m")
    ),
    (
        None,
        "post",
        "/api/v1/delivery/eta/",
        {"destination": {"lat": "#", "lng": 13.4}},
        "destination",
    ),
    (
        None,
        "post",
        "/api/v1/delivery/eta/",
        {"destination": {"lat": 52.5, "lng": "#"}},
        "destination",
    ),
    (None, "post", "/api/v1/delivery/eta/", {"merchant_ids": ["#"]}, "merchant_ids"),
    (None, "post", "/api/v1/delivery/eta/", {"order_id": "#"}, "order_id"),
]


def _numbers(schema: dict, components: dict, name: str = ""):
    """The dotted names of the writable numbers in a request body's schema."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("readOnly"):
        return
    if schema.get("type") in ("integer", "number"):
        yield name
    for sub in schema.get("allOf", []):
        yield from _numbers(sub, components, name)
    for key, sub in schema.get("properties", {}).items():
        yield from _numbers(sub, components, f"{name}.{key}" if name else key)
    if "items" in schema:
        yield from _numbers(schema["items"], components, f"{name}[]")


def _marked(body, mark: str, name: str = ""):
    """The dotted names of the places `mark` holds in `body`."""
    if body == mark:
        yield name
    elif isinstance(body, dict):
        for key, value in body.items():
            yield from _marked(value, mark, f"{name}.{key}" if name else key)
    elif isinstance(body, list):
        for value in body:
            yield from _marked(value, mark, f"{name}[]")


def test_every_number_in_a_request_body_is_here():
    schema = _schema()
    in_schema = {
        (method, path, name)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
        for content in operation["requestBody"]["content"].values()
        for name in _numbers(content["schema"], schema["components"]["schemas"])
    }
    covered = {
        (method, path, name.removesuffix("[]"))
        for _, method, path, body, _ in NUMBER_CASES
        for name in _marked(body, "#")
    } | {
        (method, path, name.removesuffix("[]"))
        for _, method, path, body, _ in GEOJSON_CASES
        for name in _marked(body, "*")
    }
    assert {(m, p, n.removesuffix("[]")) for m, p, n in in_schema} <= covered


@pytest.mark.parametrize("value", [HUGE, 2**63, -(2**63) - 1], ids=["10**400", "2**63", "-2**63-1"])
@pytest.mark.parametrize(("caller", "method", "path", "body", "field"), NUMBER_CASES)
def test_huge_integers_in_number_fields_are_400_naming_the_field(
    world, as_user, caller, method, path, body, field, value
):
    before = _snapshot()
    text = json.dumps(body).replace('"#"', str(value))
    response = _send(world, as_user, caller, method, path, text)
    assert response.status_code == 400
    assert field in response.json()
    assert _snapshot() == before


# `{name}` stands for an id written in the digits of another script, `<name>` for an id in
# ASCII digits.
BODY_ID_CASES = [
    ("client", "post", ORDERS, {"merchant_id": "{merchant_id}"}, "merchant_id"),
    ("client", "post", ORDERS, {"items": [{"product_id": "{product_id}", "quantity": 2}]}, "items"),
    (
        "client",
        "post",
        ORDERS,
        {"items": [{"product_id": "<product_id>", "quantity": "{two}"}]},
        "items",
    ),
    (
        "operator",
        "post",
        "/api/v1/orders/priority-assignment/",
        {"order_ids": ["{order_id}"]},
        "order_ids",
    ),
    ("operator", "post", "/api/v1/inventory/{inventory_id}/adjust/", {"delta": "{one}"}, "delta"),
    (
        "operator",
        "post",
        "/api/v1/inventory/",
        {"product_id": "{spare_id}", "quantity": 1},
        "product_id",
    ),
    ("operator", "post", "/api/v1/products/", {"merchant_id": "{merchant_id}"}, "merchant_id"),
    ("operator", "post", "/api/v1/products/", {"category_id": "{category_id}"}, "category_id"),
    ("operator", "post", "/api/v1/merchants/", {"category_ids": ["{category_id}"]}, "category_ids"),
    ("operator", "post", "/api/v1/couriers/", {"user_id": "{user_id}"}, "user_id"),
    (
        None,
        "post",
        "/api/v1/delivery/eta/",
        {"destination": {"lat": 52.5, "lng": 13.4}, "merchant_ids": ["{merchant_id}"]},
        "merchant_ids",
    ),
    (None, "post", "/api/v1/delivery/eta/", {"order_id": "{order_id}"}, "order_id"),
    (
        "operator",
        "post",
        "/api/v1/webhooks/",
        {"url": WEBHOOK_URL, "merchant_id": "{merchant_id}"},
        "merchant_id",
    ),
]


@pytest.mark.parametrize("digit", INT_READABLE_DIGITS)
@pytest.mark.parametrize(("caller", "method", "path", "body", "field"), BODY_ID_CASES)
def test_ids_in_bodies_in_digits_other_than_ascii_are_400(
    world, as_user, caller, method, path, body, field, digit
):
    ids = {
        **world["path"],
        "spare_id": factories.product(merchant=world["shop"]).pk,
        "user_id": factories.user().pk,
        "one": 1,
        "two": 2,
    }
    script = str.maketrans("0123456789", "".join(chr(ord(digit) - 1 + n) for n in range(10)))
    text = json.dumps(body)
    for name, value in ids.items():
        text = text.replace("{" + name + "}", str(value).translate(script))
        text = text.replace(f'"<{name}>"', str(value))
    before = _snapshot()
    response = _send(world, as_user, caller, method, path, text)
    assert response.status_code == 400
    assert field in response.json()
    assert _snapshot() == before
