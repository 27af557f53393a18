"""The ETA view authenticates, and answers errors, exactly as the API's DRF views do."""

import contextlib

import httpx
import pytest
from django.db import connections
from django.test import Client

from bench.common.processes import free_port as closed_port
from geomarket.asgi import application
from tests.delivery.placing import in_thread, order_placed

pytestmark = [pytest.mark.django_db(transaction=True)]

ETA = "/api/v1/delivery/eta/"
# A DRF view that needs a caller, to compare the ETA view's refusals with.
ORDERS = "/api/v1/orders/"
INVALID_TOKEN = "0" * 40
CSRF = "a" * 32


async def request(method: str, path: str, body=None, headers=None, cookies=None):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", cookies=cookies
    ) as client:
        return await client.request(method, path, json=body, headers=headers or {})


@in_thread
def placed_order():
    order = order_placed()
    session = Client()
    session.force_login(order.buyer)
    return order, order.buyer.auth_token.key, session.cookies["sessionid"].value


def bodies(order) -> list[dict]:
    """Both forms of the ETA body, each valid."""
    return [
        {"order_id": order.pk},
        {"destination": {"lat": 52.5, "lng": 13.4}, "merchant_ids": [order.merchant_id]},
    ]


def refusal(response: httpx.Response) -> tuple:
    return (
        response.status_code,
        response.json(),
        response.headers.get("WWW-Authenticate"),
        response.headers.get("Content-Type"),
    )


async def test_a_lower_case_token_scheme_is_accepted():
    order, token, _ = await placed_order()
    response = await request(
        "POST", ETA, {"order_id": order.pk}, {"Authorization": f"token {token}"}
    )
    assert response.status_code == 200, response.text
    assert [r["merchant_id"] for r in response.json()["results"]] == [order.merchant_id]


@pytest.mark.parametrize(
    "authorization",
    [f"Token {INVALID_TOKEN}", f"token {INVALID_TOKEN}", "Token", "Token two parts"],
)
async def test_an_invalid_token_is_refused_as_drf_refuses_it_for_both_bodies(authorization):
    order, _, _ = await placed_order()
    headers = {"Authorization": authorization}
    drf = await request("GET", ORDERS, headers=headers)
    assert drf.status_code == 401
    assert drf.headers["WWW-Authenticate"] == "Token"
    for body in bodies(order):
        eta = await request("POST", ETA, body, headers)
        assert refusal(eta) == refusal(drf), body


async def test_an_inactive_users_token_is_refused_as_drf_refuses_it():
    order, token, _ = await placed_order()

    @in_thread
    def deactivate():
        order.buyer.__class__.objects.filter(pk=order.buyer_id).update(is_active=False)

    await deactivate()
    headers = {"Authorization": f"Token {token}"}
    drf = await request("GET", ORDERS, headers=headers)
    assert drf.status_code == 401
    for body in bodies(order):
        assert refusal(await request("POST", ETA, body, headers)) == refusal(drf), body


async def test_an_order_needs_a_caller_and_gets_the_same_401_as_drf():
    order, _, _ = await placed_order()
    drf = await request("GET", ORDERS)
    eta = await request("POST", ETA, {"order_id": order.pk})
    assert eta.status_code == 401
    assert refusal(eta) == refusal(drf)


async def test_a_session_authenticates_with_its_csrf_token():
    order, _, session = await placed_order()
    cookies = {"sessionid": session, "csrftoken": CSRF}
    response = await request("POST", ETA, {"order_id": order.pk}, {"X-CSRFToken": CSRF}, cookies)
    assert response.status_code == 200, response.text
    assert [r["merchant_id"] for r in response.json()["results"]] == [order.merchant_id]


async def test_a_session_without_its_csrf_token_is_refused_as_drf_refuses_it():
    order, _, session = await placed_order()
    cookies = {"sessionid": session}
    drf = await request("POST", ORDERS, {}, cookies=cookies)
    assert drf.status_code == 403
    assert drf.json()["detail"].startswith("CSRF Failed")
    for body in bodies(order):
        eta = await request("POST", ETA, body, cookies=cookies)
        assert refusal(eta) == refusal(drf), body


@contextlib.contextmanager
def database_down():
    """New connections go to a port nothing listens on, so every query of a request fails
    as in a real outage; the settings are put back afterwards."""
    settings_dict = connections["default"].settings_dict
    port = settings_dict["PORT"]
    settings_dict["PORT"] = str(closed_port())
    try:
        yield
    finally:
        settings_dict["PORT"] = port


def outage(response: httpx.Response) -> tuple:
    return (
        response.status_code,
        response.json(),
        response.headers.get("Retry-After"),
        response.headers.get("Content-Type"),
    )


async def test_a_database_outage_is_the_handlers_503_for_both_bodies_and_any_caller():
    order, token, _ = await placed_order()
    with database_down():
        drf = await request("GET", ORDERS, headers={"Authorization": f"Token {token}"})
        assert drf.status_code == 503
        assert drf.json() == {"detail": "The database is unavailable; try again shortly."}
        for headers in ({}, {"Authorization": f"Token {token}"}):
            for body in bodies(order):
                if "order_id" in body and not headers:
                    continue  # refused for want of a caller before any query
                eta = await request("POST", ETA, body, headers)
                assert outage(eta) == outage(drf), (body, headers)
    # The same requests are answered once the database is back.
    for body in bodies(order):
        eta = await request("POST", ETA, body, {"Authorization": f"Token {token}"})
        assert eta.status_code == 200, eta.text


async def test_the_caller_is_refused_before_the_method_the_media_type_and_the_body():
    """DRF authenticates before it looks at the method or reads the body; so does the ETA."""
    headers = {"Authorization": f"Token {INVALID_TOKEN}"}
    drf = await request("GET", ORDERS, headers=headers)
    assert drf.status_code == 401
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for method, content, content_type in (
            ("GET", b"", None),
            ("POST", b"<xml/>", "application/xml"),
            ("POST", b"[" * 5000, "application/json"),
            ("POST", b'{"merchant_ids": "x"}', "application/json"),
        ):
            sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
            eta = await client.request(method, ETA, content=content, headers=sent)
            assert refusal(eta) == refusal(drf), (method, content_type)


async def test_method_media_type_and_body_refusals_are_drfs_own():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        wrong_method = await client.get(ETA)
        assert wrong_method.status_code == 405
        assert wrong_method.json() == {"detail": 'Method "GET" not allowed.'}
        assert wrong_method.headers["Allow"] == "POST"
        xml = await client.post(ETA, content=b"<x/>", headers={"Content-Type": "application/xml"})
        assert xml.status_code == 415
        assert xml.json() == {"detail": 'Unsupported media type "application/xml" in request.'}
        listed = await client.post(ETA, json=[1])
        assert listed.status_code == 400
        assert listed.json() == {"non_field_errors": ["Expected a JSON object."]}
