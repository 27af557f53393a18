"""Public reads open to web pages of other origins (geomarket/api/cors.py): a map on
another origin loads tiles and GeoJSON; nothing that needs a caller, no write and no
answer to a caller's credentials carries a CORS header; the event loop's answers carry
the same headers as Django's."""

import pytest
from rest_framework.test import APIClient

from geomarket.api.cors import public_read
from geomarket.ratelimit import RATE_LIMIT_HEADERS
from merchants.tile_apis import TileApi
from orders.apis import OrderListApi
from tests import factories
from tests.market import api_client_as
from tests.search.served import in_thread, served

pytestmark = pytest.mark.django_db

POINT = {"lat": "52.52", "lng": "13.405"}
NEARBY = "/api/v1/merchants/nearby/"
TILE = "/tiles/merchants/14/8802/5373.mvt"
ORIGIN = {"HTTP_ORIGIN": "https://map.example"}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Credentials",
)


def shop():
    merchant = factories.merchant(lat=52.5201, lng=13.4051)
    factories.zone(merchant=merchant)
    factories.stock(product=factories.product(merchant=merchant), quantity=3)
    return merchant


def map_reads(merchant) -> dict[str, tuple[str, dict]]:
    return {
        "tile": (TILE, {}),
        "merchants nearby": (NEARBY, POINT),
        "merchants nearby as GeoJSON": (NEARBY, {**POINT, "format": "geojson"}),
        "delivering-to": ("/api/v1/merchants/delivering-to/", POINT),
        "products nearby as GeoJSON": ("/api/v1/products/nearby/", {**POINT, "format": "geojson"}),
        "zones as GeoJSON": (
            f"/api/v1/merchants/{merchant.pk}/delivery-zones/",
            {"format": "geojson"},
        ),
        "merchants": ("/api/v1/merchants/", {}),
        "suggest": ("/api/v1/search/suggest/", {"q": "bread"}),
    }


def assert_open(answer) -> None:
    assert answer["Access-Control-Allow-Origin"] == "*"
    exposed = {name.strip() for name in answer["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Retry-After", *RATE_LIMIT_HEADERS} <= exposed
    assert "Access-Control-Allow-Credentials" not in answer
    assert {"Cookie", "Authorization"} <= {v.strip() for v in answer["Vary"].split(",")}


def assert_closed(answer) -> None:
    assert not any(header in answer for header in CORS_HEADERS), dict(answer.headers)


@pytest.mark.parametrize("method", ["get", "head"])
def test_anonymous_map_reads_are_open_to_other_origins(method):
    merchant = shop()
    client = APIClient()
    for name, (path, query) in map_reads(merchant).items():
        answer = getattr(client, method)(path, query, **ORIGIN)
        assert answer.status_code in (200, 204), name
        assert_open(answer)


def test_a_public_reads_refusals_are_readable_too():
    # A map must read which parameter was wrong, or how long to wait.
    for path, query in ((NEARBY, {"lat": "91", "lng": "0"}), (NEARBY, {**POINT, "format": "kml"})):
        answer = APIClient().get(path, query, **ORIGIN)
        assert answer.status_code in (400, 406)
        assert_open(answer)


def test_a_tile_revalidated_by_a_page_is_open():
    first = APIClient().get("/tiles/merchants/0/0/0.mvt", **ORIGIN)
    again = APIClient().get(
        "/tiles/merchants/0/0/0.mvt", HTTP_IF_NONE_MATCH=first["ETag"], **ORIGIN
    )
    assert again.status_code == 304
    assert_open(again)


def test_answers_to_credentials_carry_no_cors_header():
    merchant = shop()
    user = factories.user()
    with_session = APIClient()
    with_session.force_login(user)
    for client in (api_client_as(user), with_session):
        for name, (path, query) in map_reads(merchant).items():
            answer = client.get(path, query, **ORIGIN)
            assert answer.status_code in (200, 204), name
            assert_closed(answer)
            # A cache must not hand this answer to an anonymous page.
            assert {"Cookie", "Authorization"} <= {v.strip() for v in answer["Vary"].split(",")}


@pytest.mark.parametrize(
    "path", ["/api/v1/orders/", "/api/v1/auth/me/", "/api/v1/inventory/", "/api/v1/couriers/"]
)
def test_reads_that_need_a_caller_carry_no_cors_header(path):
    assert_closed(APIClient().get(path, **ORIGIN))
    assert_closed(api_client_as(factories.user(is_staff=True)).get(path, **ORIGIN))


def test_writes_carry_no_cors_header():
    refused = APIClient().post("/api/v1/merchants/", {}, format="json", **ORIGIN)
    assert refused.status_code == 401
    assert_closed(refused)
    token = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "cors-user", "password": "pw-Secret-123"},
        format="json",
        **ORIGIN,
    )
    assert token.status_code == 201
    assert_closed(token)


def test_a_preflight_for_a_public_read_is_answered():
    answer = APIClient().options(
        TILE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="if-none-match",
        **ORIGIN,
    )
    assert answer.status_code == 204
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert {m.strip() for m in answer["Access-Control-Allow-Methods"].split(",")} == {
        "GET",
        "HEAD",
    }
    assert "if-none-match" in answer["Access-Control-Allow-Headers"].lower()
    assert int(answer["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in answer


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v1/merchants/", "POST"), ("/api/v1/orders/", "GET"), (NEARBY, "DELETE")],
    ids=["write to a public path", "read needing a caller", "a method the view has not"],
)
def test_other_preflights_are_not_granted(path, method):
    answer = APIClient().options(path, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method, **ORIGIN)
    assert_closed(answer)
    assert "Access-Control-Allow-Methods" not in answer


def test_what_is_public_is_what_the_permissions_let_anyone_read():
    assert public_read(TileApi.as_view())
    assert not public_read(OrderListApi.as_view())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("async_pool_closed")
async def test_the_event_loops_answers_carry_djangos_cors_headers(django_entries):
    await in_thread(shop)
    async with served() as client:
        # Django answers first; the lane answers the next ones with its headers, the
        # front cache with its whole answer.
        for path in (NEARBY, "/api/v1/products/nearby/"):
            by_django = await client.get(
                path, params=POINT, headers={"origin": "https://m.example"}
            )
            entries = len(django_entries)
            again = [
                await client.get(path, params={**POINT, "radius": radius})
                for radius in ("1000", "1000")
            ]
            assert len(django_entries) == entries, path
            for answer in (by_django, *again):
                assert answer.status_code == 200
                assert answer.headers["access-control-allow-origin"] == "*"
                for name in ("access-control-expose-headers", "vary"):
                    assert answer.headers[name] == by_django.headers[name]
