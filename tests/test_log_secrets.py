"""No password, token or session secret reaches the logs during a full order flow."""

import logging

import pytest

from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


def test_order_flow_logs_no_secrets(
    api_client, market, caplog, as_user, django_capture_on_commit_callbacks
):
    password = "Very-Secret-Passphrase-42"
    # Django's request log at its most talkative (REQUEST_LOG_LEVEL=WARNING logs 4xx).
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="django.request"):
        registered = api_client.post(
            "/api/v1/auth/register/", {"username": "logcheck", "password": password}
        ).json()
        api_client.post("/api/v1/auth/token/", {"username": "logcheck", "password": "wrong"})
        token = api_client.post(
            "/api/v1/auth/token/", {"username": "logcheck", "password": password}
        ).json()["token"]
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        with django_capture_on_commit_callbacks(execute=True):
            placed = api_client.post(
                ORDERS, order_body(market, (market["bread"], 2)), HTTP_IDEMPOTENCY_KEY="log-key-1"
            )
        api_client.post(ORDERS, order_body(market, (market["bread"], 999)))
        api_client.get("/api/v1/auth/me/")
        market["owner_client"].post(
            f"{ORDERS}{placed.json()['id']}/status/", {"status": "preparing"}
        )
        as_user(None).get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Token not-valid-token")
    assert placed.status_code == 201
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "the flow should log something to check"
    for secret in (
        password,
        token,
        registered["token"],
        market["owner"].auth_token.key,
        "not-valid-token",
    ):
        assert secret not in logged
