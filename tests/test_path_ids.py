"""Ids in paths (`geomarket.api.paths`): an id any column holds reaches its row, and one
no column can hold answers 404, as an id of no row does, on every route."""

import re

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator

from bench.scenarios.api import get_routes
from geomarket.api.fields import BIGINT_MAX
from tests import factories

pytestmark = pytest.mark.django_db

# Past PostgreSQL's integer (int4): statements that took a merchant's id as one refused it.
PAST_INT4 = 2**31 + 7
# An id in a route, whatever its converter: one not taken by the `id` converter fails the
# tests below.
_ID_PARAMETER = re.compile(r"<(?:\w+:)?\w+_id>")


def _id_routes() -> list[str]:
    """Every route of the URL conf with an id in its path, with a leading slash."""
    return [r.pattern for r in get_routes(answering_get=False) if _ID_PARAMETER.search(r.pattern)]


def _with_ids(route: str, value: int | str) -> str:
    return _ID_PARAMETER.sub(str(value), route)


@pytest.fixture
def merchant_past_int4(db):
    """A merchant whose id is past int4: the merchants' sequence moved there for this test
    and back after it (a sequence does not roll back with the test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('merchants_merchant', 'id')")
        (sequence,) = cursor.fetchone()
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
        last, called = cursor.fetchone()
        cursor.execute("SELECT setval(%s, %s, false)", [sequence, PAST_INT4])
    try:
        owner = factories.user()
        shop = factories.merchant(owner=owner)
        factories.zone(merchant=shop)
        yield shop, owner
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last, called])


@pytest.mark.parametrize(
    "path", ["{}/", "{}/hours/", "{}/slots/?date=2026-12-07", "{}/closures/", "{}/delivery-zones/"]
)
def test_a_merchant_whose_id_is_past_int4_is_served(merchant_past_int4, as_user, path):
    shop, owner = merchant_past_int4
    assert shop.pk == PAST_INT4
    response = as_user(owner).get("/api/v1/merchants/" + path.format(shop.pk))
    assert response.status_code == 200, response.content
    if path == "{}/":
        assert response.json()["id"] == PAST_INT4


def test_the_id_routes_are_found():
    routes = _id_routes()
    # Every app's own: a walk that found none would pass the tests below with nothing.
    assert {route.split("/")[3] for route in routes} >= {
        "merchants",
        "products",
        "orders",
        "couriers",
        "inventory",
        "webhooks",
    }, routes


@pytest.mark.parametrize("value", [BIGINT_MAX + 1, 10**25])
def test_an_id_past_bigint_is_no_route_on_any_path(as_user, value):
    operator = as_user(factories.user(is_staff=True))
    answers = {route: operator.get(_with_ids(route, value)).status_code for route in _id_routes()}
    assert set(answers.values()) == {404}, answers


def test_the_largest_id_is_a_row_not_found_on_every_get(as_user):
    operator = as_user(factories.user(is_staff=True))
    routes = [route.pattern for route in get_routes() if _ID_PARAMETER.search(route.pattern)]
    assert routes
    answers = {route: operator.get(_with_ids(route, BIGINT_MAX)).status_code for route in routes}
    assert set(answers.values()) == {404}, answers


def test_the_schema_bounds_every_id_in_a_path():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    bounds = {
        (path, parameter["name"]): (
            parameter["schema"].get("minimum"),
            parameter["schema"].get("maximum"),
        )
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", ())
        if parameter["in"] == "path" and parameter["name"].endswith("_id")
    }
    assert bounds
    assert set(bounds.values()) == {(1, BIGINT_MAX)}, bounds
