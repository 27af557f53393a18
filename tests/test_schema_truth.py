"""What the OpenAPI schema says, the API does: the cases the fuzz run found, pinned.

A body's field takes the JSON type the schema gives it, and nothing else; an empty
optional query parameter counts as absent, as the schema says; public reads are public in
the schema; other methods get a 405 with `Allow`.
"""

import pytest

from catalog.models import Product
from delivery.services import courier_create
from merchants.models import Merchant
from tests import factories

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operation(schema, method: str, path: str) -> dict:
    return schema["paths"][path][method]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", 12.5),
        ("price", 3),
        ("price", " 3.00"),
        ("price", "1e2"),
        ("is_published", 0),
        ("is_published", "true"),
        ("title", 5),
    ],
)
def test_a_product_body_takes_each_field_in_its_json_type_only(market, field, value):
    body = {"category_id": market["bread"].category_id, "title": "Rye", "price": "3.00"}
    response = market["owner_client"].post(PRODUCTS, {**body, field: value}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not Product.objects.filter(title__in=["Rye", "5"]).exists()
    # The same body, typed as the schema says, is taken.
    assert market["owner_client"].post(PRODUCTS, body, format="json").status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_active": 0}, "is_active"),
        ({"category_ids": {}}, "category_ids"),
        ({"name": 7}, "name"),
    ],
)
def test_a_merchant_patch_refuses_values_of_another_json_type(market, body, field):
    shop = market["shop"]
    category = factories.category()
    shop.categories.add(category)
    before = Merchant.objects.filter(pk=shop.pk).values().get()
    response = market["owner_client"].patch(f"/api/v1/merchants/{shop.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Merchant.objects.filter(pk=shop.pk).values().get() == before
    assert list(shop.categories.all()) == [category]


def test_a_coordinate_is_not_a_boolean(as_user):
    user = factories.user()
    courier = courier_create(user=user, name="C", vehicle="bike", capacity=1, status="available")
    response = as_user(user).post(
        "/api/v1/couriers/me/location/", {"lat": False, "lng": 0.0}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "lat" in response.json()
    courier.refresh_from_db()
    assert courier.location is None


@pytest.mark.parametrize(
    "path",
    ["/api/v1/merchants/?q=&category=", "/api/v1/search/products/?q=&sort=&category="],
)
def test_empty_optional_query_parameters_count_as_absent(client, market, schema, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    assert response.json()["count"] == client.get(path.split("?")[0]).json()["count"] > 0
    parameters = _operation(schema, "get", path.split("?")[0])["parameters"]
    given = {pair.split("=")[0] for pair in path.split("?")[1].split("&")}
    assert {p["name"] for p in parameters if p.get("allowEmptyValue")} >= given


def test_public_reads_are_public_in_the_schema_and_writes_are_not(client, schema):
    for path in ("/api/v1/categories/", "/api/v1/categories/{category_id}/"):
        assert {} in _operation(schema, "get", path)["security"]
    assert {} not in _operation(schema, "post", "/api/v1/categories/")["security"]
    assert client.get("/api/v1/categories/").status_code == 200


def test_declared_statuses_follow_the_view(schema):
    # An id in the path can name nothing; a write can meet a conflict; a public read
    # without parameters can only fail on its token, its `Accept` or a dependency.
    assert set(_operation(schema, "get", "/api/v1/products/{product_id}/")["responses"]) == {
        "200",
        "401",
        "404",
        "406",
        "503",
    }
    assert {"400", "403", "409", "413", "415"} <= set(
        _operation(schema, "post", "/api/v1/inventory/{inventory_id}/adjust/")["responses"]
    )
    assert "429" in _operation(schema, "get", "/api/v1/search/suggest/")["responses"]
    assert "429" not in _operation(schema, "get", "/api/v1/search/products/")["responses"]


def test_406_is_declared_where_the_negotiation_can_refuse(client, schema):
    """Every GET without path parameters, asked for a type nothing renders: a 406 exactly
    where the schema declares one, in the contract's error shape."""
    asked = 0
    for path, operations in schema["paths"].items():
        if "get" not in operations or "{" in path:
            continue
        answer = client.get(path, headers={"accept": "application/x-unrenderable"})
        declared = "406" in operations["get"]["responses"]
        assert (answer.status_code == 406) is declared, path
        if declared:
            assert "detail" in answer.json()
            assert operations["get"]["responses"]["406"]["content"]["application/json"]
        asked += 1
    assert asked > 20
    # The GeoJSON answers, a map's tiles and an order's stream, whose views render their
    # own type: the tiles and the stream refuse no `Accept`.
    for path in (
        "/api/v1/merchants/nearby/",
        "/api/v1/products/nearby/",
        "/api/v1/merchants/{merchant_id}/delivery-zones/",
    ):
        assert "406" in _operation(schema, "get", path)["responses"]
    for path in ("/tiles/{layer}/{z}/{x}/{y}.mvt", "/api/v1/orders/{order_id}/stream/"):
        assert "406" not in _operation(schema, "get", path)["responses"]
    tile = client.get("/tiles/merchants/0/0/0.mvt", headers={"accept": "application/x-protobuf"})
    assert tile.status_code == 204
    # Writes negotiate their answer too, before anything is read or written.
    assert "406" in _operation(schema, "post", "/api/v1/merchants/")["responses"]


@pytest.mark.parametrize(
    ("path", "allowed"), [("/healthz", "GET"), ("/api/v1/delivery/eta/", "POST")]
)
@pytest.mark.parametrize("method", ["PUT", "TRACE", "QUERY"])
def test_plain_views_answer_other_methods_405_with_allow(client, path, allowed, method):
    response = client.generic(method, path)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert "detail" in response.json()


def test_no_operation_is_described_by_a_docstring_it_inherits(schema):
    """A mixin's docstring is about the mixin (how GeoJSON answers are made, how limits
    are counted), not about the operations of the views that use it."""
    from geomarket.api.geojson import GeoJSONAnswers
    from geomarket.ratelimit import RateLimitedMixin

    mixin_docs = {" ".join(cls.__doc__.split())[:60] for cls in (GeoJSONAnswers, RateLimitedMixin)}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            description = " ".join(operation.get("description", "").split())
            assert description[:60] not in mixin_docs, (method, path)
    # Those that took a mixin's say what they answer.
    for method, path in [
        ("get", "/api/v1/merchants/nearby/"),
        ("get", "/api/v1/merchants/delivering-to/"),
        ("get", "/api/v1/orders/"),
        ("post", "/api/v1/auth/token/"),
    ]:
        assert _operation(schema, method, path)["description"], (method, path)


def test_a_view_with_no_description_of_its_own_takes_none_from_its_mixins():
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from geomarket.api.geojson import Features, GeoJSONAnswers
    from geomarket.api.schema import AutoSchema

    class Undescribed(GeoJSONAnswers, APIView):
        features = Features(geometry="location")

        def get(self, request):
            return Response({})

    schema = AutoSchema()
    schema.view, schema.method = Undescribed(), "GET"
    assert schema.get_description() == ""
