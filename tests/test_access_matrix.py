"""Orders, dispatch, couriers, stats and analytics: every role, own versus another's object.

The dashboard endpoints have their own matrix in test_tenant_matrix.py; together they
cover every endpoint of the contract that is not public. README's access table is this.
"""

import pytest

from delivery.models import Courier
from delivery.services import courier_create
from inventory.models import Inventory
from orders.models import Order, OrderIncident, OrderItem, OrderStatusChange
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.rows import rows

pytestmark = pytest.mark.django_db

# What the requests of the matrix could write: a refusal must leave all of it as it was.
STATE = (Order, OrderItem, OrderStatusChange, OrderIncident, Courier, Inventory)

ROLES = [
    "anonymous",
    "customer",
    "other_customer",
    "owner",
    "other_owner",
    "courier",
    "other_courier",
    "operator",
]


@pytest.fixture(scope="module")
def world(module_db):
    """Made once for the module's hundred requests, each of which undoes its own writes."""
    as_user = api_client_as
    market = build_market(as_user)
    order = Order.objects.get(
        pk=market["client"].post(ORDERS, order_body(market, (market["bread"], 2))).json()["id"]
    )
    courier_user, other_courier_user = factories.user(), factories.user()
    courier = courier_create(user=courier_user, name="C", vehicle="bike", status="available")
    courier_create(user=other_courier_user, name="D", vehicle="bike", status="available")
    Order.objects.filter(pk=order.pk).update(courier=courier, status="ready")
    users = {
        "anonymous": None,
        "customer": market["customer"],
        "other_customer": factories.user(),
        "owner": market["owner"],
        "other_owner": factories.merchant().owner,
        "courier": courier_user,
        "other_courier": other_courier_user,
        "operator": factories.user(is_staff=True),
    }
    return {
        "clients": {role: as_user(user) for role, user in users.items()},
        "order": order,
        "shop": market["shop"],
        "courier": courier,
    }


# (name, method, url, body, {role: expected status})
CASES = [
    (
        "order detail",
        "get",
        lambda w: f"{ORDERS}{w['order'].pk}/",
        None,
        {
            "anonymous": 401,
            "customer": 200,
            "other_customer": 404,
            "owner": 200,
            "other_owner": 404,
            "courier": 200,
            "other_courier": 404,
            "operator": 200,
        },
    ),
    (
        "orders list",
        "get",
        lambda w: ORDERS,
        None,
        {"anonymous": 401, **{r: 200 for r in ROLES if r != "anonymous"}},
    ),
    (
        "order pick-up",
        "post",
        lambda w: f"{ORDERS}{w['order'].pk}/status/",
        {"status": "picked_up"},
        {
            "anonymous": 401,
            "customer": 409,
            "other_customer": 404,
            "owner": 409,
            "other_owner": 404,
            "courier": 200,
            "other_courier": 404,
            "operator": 200,
        },
    ),
    (
        "order incidents",
        "get",
        lambda w: f"{ORDERS}{w['order'].pk}/incidents/",
        None,
        {
            "anonymous": 401,
            "customer": 200,
            "other_customer": 404,
            "owner": 200,
            "other_owner": 404,
            "courier": 200,
            "other_courier": 404,
            "operator": 200,
        },
    ),
    (
        "order incident report",
        "post",
        lambda w: f"{ORDERS}{w['order'].pk}/incidents/",
        {"kind": "late"},
        {
            "anonymous": 401,
            "customer": 201,
            "other_customer": 404,
            "owner": 201,
            "other_owner": 404,
            "courier": 201,
            "other_courier": 404,
            "operator": 201,
        },
    ),
    (
        # The world's order has its courier, so those who may ask are told it waits for
        # none (`order_not_waiting`).
        "courier candidates",
        "get",
        lambda w: f"{ORDERS}{w['order'].pk}/courier-candidates/",
        None,
        {
            "anonymous": 401,
            "customer": 403,
            "other_customer": 404,
            "owner": 409,
            "other_owner": 404,
            "courier": 403,
            "other_courier": 404,
            "operator": 409,
        },
    ),
    (
        "priority assignment",
        "post",
        lambda w: f"{ORDERS}priority-assignment/",
        {},
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if r not in ("anonymous", "operator")},
            "operator": 200,
        },
    ),
    (
        "order stats",
        "get",
        lambda w: f"{ORDERS}stats/",
        None,
        {
            "anonymous": 401,
            "customer": 403,
            "other_customer": 403,
            "owner": 200,
            "other_owner": 200,
            "courier": 403,
            "other_courier": 403,
            "operator": 200,
        },
    ),
    (
        "merchant orders",
        "get",
        lambda w: f"/api/v1/merchants/{w['shop'].pk}/orders/",
        None,
        {
            "anonymous": 401,
            "customer": 403,
            "other_customer": 403,
            "owner": 200,
            "other_owner": 403,
            "courier": 403,
            "other_courier": 403,
            "operator": 200,
        },
    ),
    (
        "couriers list",
        "get",
        lambda w: "/api/v1/couriers/",
        None,
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if r not in ("anonymous", "operator")},
            "operator": 200,
        },
    ),
    (
        "courier detail",
        "patch",
        lambda w: f"/api/v1/couriers/{w['courier'].pk}/",
        {"capacity": 2},
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if r not in ("anonymous", "operator")},
            "operator": 200,
        },
    ),
    (
        "courier me",
        "get",
        lambda w: "/api/v1/couriers/me/",
        None,
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if "courier" not in r or r == "anonymous"},
            "courier": 200,
            "other_courier": 200,
        },
    ),
    (
        "courier ping",
        "post",
        lambda w: "/api/v1/couriers/me/location/",
        {"lat": 1, "lng": 1},
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if "courier" not in r},
            "courier": 200,
            "other_courier": 200,
        },
    ),
    (
        "courier orders",
        "get",
        lambda w: "/api/v1/couriers/me/orders/",
        None,
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if "courier" not in r},
            "courier": 200,
            "other_courier": 200,
        },
    ),
    (
        "courier route",
        "post",
        lambda w: f"/api/v1/couriers/{w['courier'].pk}/route/",
        None,
        {
            **{r: 403 for r in ROLES if r not in ("courier", "operator")},
            "courier": 200,
            "operator": 200,
        },
    ),
    (
        "courier own route",
        "post",
        lambda w: "/api/v1/couriers/me/route/",
        None,
        {
            **{r: 403 for r in ROLES if "courier" not in r},
            "courier": 200,
            "other_courier": 200,
        },
    ),
    (
        "analytics",
        "get",
        lambda w: "/api/v1/orders/analytics/",
        None,
        {
            "anonymous": 401,
            **{r: 403 for r in ROLES if r not in ("anonymous", "operator")},
            "operator": 200,
        },
    ),
]
CASES = [(n, m, u, b, {**e, "anonymous": 401}) for n, m, u, b, e in CASES]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_access(world, role, case):
    _name, method, url, body, expected = case
    client = world["clients"][role]
    call = getattr(client, method)
    before = rows(*STATE)
    response = call(url(world), body, format="json") if body is not None else call(url(world))
    assert response.status_code == expected[role], (role, response.content)
    if response.status_code >= 400:
        assert rows(*STATE) == before, "a refused request changed stored state"


def test_couriers_see_only_their_own_orders(world):
    mine = world["clients"]["courier"].get("/api/v1/couriers/me/orders/").json()["results"]
    theirs = world["clients"]["other_courier"].get("/api/v1/couriers/me/orders/").json()
    assert [o["id"] for o in mine] == [world["order"].pk]
    assert theirs["results"] == []
    listed = world["clients"]["other_courier"].get(ORDERS).json()["results"]
    assert listed == []
