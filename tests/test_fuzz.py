"""Schemathesis over every operation of the OpenAPI schema, as every kind of caller.

Two checks must find nothing: no 5xx, and every response conforms to the schema. The
bounded run here is part of `make test`; `make fuzz` runs many more examples.
"""

import itertools
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from delivery.services import courier_create
from orders.models import Order
from tests import factories
from tests.market import build_market

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
ROLES = ("anonymous", "customer", "owner", "courier", "operator")

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def callers(db, as_user, settings):
    """Real data and a token for each kind of caller; limits lifted so fuzzing reaches
    the endpoints themselves (the limits have tests of their own)."""
    for name in ("SUGGEST", "TOKEN", "REGISTER", "ORDER", "ORDER_IP"):
        setattr(settings, f"{name}_RATE_LIMIT_PER_MINUTE", 10**6)
    market = build_market(as_user)
    courier_user = factories.user()
    courier = courier_create(
        user=courier_user, name="Fuzz", vehicle="bike", capacity=2, status="available"
    )
    order = (
        market["client"]
        .post(
            "/api/v1/orders/",
            {
                "merchant_id": market["shop"].pk,
                "items": [{"product_id": market["bread"].pk, "quantity": 2}],
                "delivery_address": {
                    "line1": "x",
                    "city": "Berlin",
                    "postal_code": "10115",
                    "location": {
                        "type": "Point",
                        "coordinates": [market["shop"].location.x, market["shop"].location.y],
                    },
                },
            },
        )
        .json()
    )
    Order.objects.filter(pk=order["id"]).update(courier=courier)
    tokens = {
        "customer": market["customer"].auth_token.key,
        "owner": market["owner"].auth_token.key,
        "courier": courier_user.auth_token.key,
        "operator": factories.user(is_staff=True).auth_token.key,
    }
    return {
        role: ({"Authorization": f"Token {tokens[role]}"} if role in tokens else {})
        for role in ROLES
    }


_turns = itertools.cycle(ROLES)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_responses_match_the_schema(case, callers):
    headers = callers[next(_turns)]
    # Requests go to the WSGI application directly: like Django's test client, keep them
    # from closing the connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
