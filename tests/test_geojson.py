"""GeoJSON FeatureCollections for GIS clients: `Accept: application/geo+json` or
`?format=geojson` on merchants/nearby, merchants/delivering-to, products/nearby and a
merchant's delivery zones. Each is the plain answer, one Feature per result; GDAL reads
each URL from a live server; the event loop's routes never answer GeoJSON requests."""

import json
import subprocess

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.search.served import served

POINT = {"lat": "52.52", "lng": "13.405"}
GEOJSON = "application/geo+json"
# JSON is acceptable, GeoJSON preferred (RFC 9110, 12.4.2).
PREFERS_GEOJSON = "application/json;q=0.5, application/geo+json"


def city():
    bakery = factories.category(name="Bakery")
    shops = [
        factories.merchant(name="Corner shop", lat=52.5201, lng=13.4051),
        factories.merchant(name="Bakery two", lat=52.521, lng=13.407),
    ]
    factories.merchant(name="Closed", lat=52.5202, lng=13.4052, is_active=False)
    zones = [factories.zone(merchant=shops[0], fee="2.50"), factories.zone(merchant=shops[1])]
    for shop in shops:
        for number in range(2):
            item = factories.product(merchant=shop, category=bakery, title=f"Bread {number}")
            factories.stock(product=item, quantity=3)
    return {"shops": shops, "zones": zones}


def endpoints(shop) -> dict[str, tuple[str, dict, str, str]]:
    """name -> (path, query, the result's geometry path, the result's id path)."""
    return {
        "merchants-nearby": ("/api/v1/merchants/nearby/", POINT, "location", "id"),
        "delivering-to": ("/api/v1/merchants/delivering-to/", POINT, "location", "id"),
        "products-nearby": ("/api/v1/products/nearby/", POINT, "merchant.location", "product.id"),
        "zones": (f"/api/v1/merchants/{shop.pk}/delivery-zones/", {}, "area", "id"),
    }


def _at(result: dict, path: str):
    for key in path.split("."):
        result = result[key]
    return result


def plain_again(collection: dict, geometry: str, id_path: str) -> dict:
    """The plain answer a collection was made from, rebuilt from it."""
    members = {k: v for k, v in collection.items() if k not in ("type", "features")}
    results = []
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        result = dict(feature["properties"])
        if "." not in geometry:
            result[geometry] = feature["geometry"]
        if "." not in id_path:
            result[id_path] = feature["id"]
        assert _at(result, geometry) == feature["geometry"]
        assert _at(result, id_path) == feature["id"]
        results.append(result)
    return {**members, "results": results}


@pytest.mark.django_db
@pytest.mark.parametrize("ask", ["accept", "format"])
@pytest.mark.parametrize("name", ["merchants-nearby", "delivering-to", "products-nearby", "zones"])
def test_each_answer_is_the_plain_one_as_a_feature_collection(ask, name):
    made = city()
    path, query, geometry, id_path = endpoints(made["shops"][0])[name]
    client = APIClient()
    plain = client.get(path, query)
    if ask == "accept":
        answer = client.get(path, query, headers={"accept": GEOJSON})
    else:
        answer = client.get(path, {**query, "format": "geojson"})
    assert answer.status_code == 200
    assert answer["Content-Type"] == GEOJSON
    assert "Accept" in answer["Vary"]
    collection = json.loads(answer.content)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == len(plain.json()["results"]) >= 1
    rebuilt = plain_again(collection, geometry, id_path)
    expected = plain.json()
    for result, plain_result in zip(rebuilt["results"], expected["results"], strict=True):
        assert list(result) == list(plain_result) or set(result) == set(plain_result)
    assert rebuilt == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        (PREFERS_GEOJSON, GEOJSON),
        ("application/geo+json;q=0.5, application/json", "application/json"),
        ("application/json;q=0, */*", GEOJSON),
        ("application/geo+json, */*;q=0.1", GEOJSON),
        ("application/geo+json;q=0.9, */*", "application/json"),
        ("*/*", "application/json"),
        ("application/json, application/geo+json", "application/json"),
    ],
)
def test_accept_is_read_with_its_quality_values(accept, answered):
    """The type the client prefers by `q` (RFC 9110, 12.5.1) wins; equal ones go to JSON."""
    answer = APIClient().get("/api/v1/merchants/nearby/", POINT, headers={"accept": accept})
    assert (answer.status_code, answer["Content-Type"]) == (200, answered)
    assert ("features" in answer.json()) is (answered == GEOJSON)


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["application/geo+json;q=0", "application/json;q=0", "text/csv"])
def test_a_type_refused_by_q_zero_is_not_sent(accept):
    answer = APIClient().get("/api/v1/merchants/nearby/", POINT, headers={"accept": accept})
    assert (answer.status_code, answer["Content-Type"]) == (406, "application/json")
    assert "detail" in answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize("ask", ["accept", "format"])
def test_head_has_the_headers_of_get(ask):
    made = city()
    path = f"/api/v1/merchants/{made['shops'][0].pk}/delivery-zones/"
    query, headers = ({}, {"accept": GEOJSON}) if ask == "accept" else ({"format": "geojson"}, {})
    client = APIClient()
    got = client.get(path, query, headers=headers)
    head = client.head(path, query, headers=headers)
    assert (head.status_code, head["Content-Type"]) == (200, GEOJSON)
    assert head["Content-Length"] == got["Content-Length"] == str(len(got.content))


SCHEMA_PATHS = {
    "merchants-nearby": "/api/v1/merchants/nearby/",
    "delivering-to": "/api/v1/merchants/delivering-to/",
    "products-nearby": "/api/v1/products/nearby/",
    "zones": "/api/v1/merchants/{merchant_id}/delivery-zones/",
}


@pytest.mark.django_db
def test_the_schema_gives_each_collection_the_shape_it_is_answered_in():
    """Each geo+json answer's schema is derived from its plain one: the members beside
    the features (a page's `count`, `next`, ...), the Feature's `id` and geometry, and its
    `properties` as the plain result's other fields. A zone written answers JSON only."""
    made = city()
    client = APIClient()
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for name, (path, query, geometry, id_path) in endpoints(made["shops"][0]).items():
        operation = schema["paths"][SCHEMA_PATHS[name]]["get"]
        documented = operation["responses"]["200"]["content"][GEOJSON]["schema"]
        collection = client.get(path, {**query, "format": "geojson"}).json()
        assert set(documented["properties"]) == set(collection), name
        feature = documented["properties"]["features"]["items"]["properties"]
        assert feature["id"]["type"] == "integer"
        assert id_path in feature["id"]["description"]
        assert geometry in feature["geometry"]["description"]
        for answered in collection["features"]:
            assert set(feature["properties"]["properties"]) == set(answered["properties"]), name
    written = schema["paths"][SCHEMA_PATHS["zones"]]["post"]["responses"]["201"]["content"]
    assert list(written) == ["application/json"]


@pytest.mark.django_db
def test_bad_parameters_keep_the_contracts_json_errors():
    for query in ({"lat": "100", "lng": "13", "format": "geojson"}, {"lat": "x", "lng": "13"}):
        answer = APIClient().get("/api/v1/merchants/nearby/", query, headers={"accept": GEOJSON})
        assert answer.status_code == 400
        assert answer["Content-Type"] == "application/json"
        assert "lat" in answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/merchants/nearby/", "/api/v1/merchants/"])
def test_an_unknown_format_is_not_acceptable(path):
    """A format the endpoint does not answer in is a 406 that says `format` was wrong, not
    a 404 that says there is no such URL."""
    answer = APIClient().get(path, {**POINT, "format": "kml"})
    assert (answer.status_code, answer["Content-Type"]) == (406, "application/json")
    assert "`format`" in answer.json()["detail"]
    assert "json" in answer.json()["detail"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_pool_closed")
async def test_the_event_loop_refuses_an_unknown_format_as_django_does(settings, django_entries):
    from tests.search.served import in_thread

    await in_thread(city)
    paths = [
        "/api/v1/merchants/nearby/",
        "/api/v1/merchants/delivering-to/",
        "/api/v1/products/nearby/",
        "/api/v1/search/products/",
    ]
    async with served() as client:
        for path in paths:
            query = {**POINT, "q": "bread"}
            assert (await client.get(path, params=query)).status_code == 200
            routed = await client.get(path, params={**query, "radius": "4000"})
            assert routed.status_code == 200
            learned = len(django_entries)
            for _ in range(2):
                refused = await client.get(path, params={**query, "format": "xml"})
                assert refused.status_code == 406, path
                assert "`format`" in refused.json()["detail"]
        assert len(django_entries) == learned + 2


@pytest.mark.django_db
def test_writes_to_zones_answer_json_whatever_is_accepted():
    shop = factories.merchant()
    client = APIClient()
    client.force_authenticate(shop.owner)
    answer = client.post(
        f"/api/v1/merchants/{shop.pk}/delivery-zones/",
        {
            "name": "Centre",
            "area": json.loads(factories.square(lat=52.52, lng=13.405).geojson),
            "delivery_fee": "1.50",
            "min_order_amount": "5.00",
        },
        format="json",
        headers={"accept": GEOJSON},
    )
    assert answer.status_code == 201
    assert json.loads(answer.content)["name"] == "Centre"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_pool_closed")
async def test_the_event_loops_routes_leave_geojson_to_django(settings, django_entries):
    """Once Django has answered plain nearby requests, the lane answers the next plain ones
    itself; GeoJSON requests, by any way of asking, still reach Django every time."""
    from tests.search.served import in_thread

    await in_thread(city)
    path = "/api/v1/products/nearby/"
    async with served() as client:
        plain = await client.get(path, params=POINT)
        routed = await client.get(path, params={**POINT, "radius": "4000"})
        assert len(django_entries) == 1
        assert routed.headers["content-type"] == "application/json"
        for _ in range(2):
            by_accept = await client.get(path, params=POINT, headers={"accept": GEOJSON})
            by_format = await client.get(path, params={**POINT, "format": "geojson"})
            by_quality = await client.get(path, params=POINT, headers={"accept": PREFERS_GEOJSON})
            for answer in (by_accept, by_format, by_quality):
                assert answer.headers["content-type"] == GEOJSON
                assert answer.json()["type"] == "FeatureCollection"
        after = await client.get(path, params={**POINT, "radius": "3000"})
    assert len(django_entries) == 7
    assert after.headers["content-type"] == "application/json"
    assert after.json()["results"] == plain.json()["results"]


def ogrinfo(url: str) -> str:
    done = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.django_db(transaction=True)
def test_gdal_reads_every_url(live_server):
    made = city()
    for name, (path, query, _, _) in endpoints(made["shops"][0]).items():
        plain = APIClient().get(path, query).json()["results"]
        params = "&".join(f"{k}={v}" for k, v in {**query, "format": "geojson"}.items())
        report = ogrinfo(f"{live_server.url}{path}?{params}")
        assert f"Feature Count: {len(plain)}" in report, (name, report)
        fields = {line.split(":")[0].strip() for line in report.splitlines() if ": " in line}
        top_level = set(plain[0]) - {"location", "area", "id"}
        assert top_level <= fields, (name, top_level - fields, report)
