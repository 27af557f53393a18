"""Schemathesis over every operation of the OpenAPI schema, as every kind of caller.

Every check schemathesis has must pass: no 5xx, responses and statuses as the schema
declares them, schema-violating requests refused with a 4xx, schema-valid ones accepted,
operations the schema marks as needing authentication refusing anonymous callers, and
undeclared methods answered 405 with `Allow`. The caller's role is drawn with the request,
so a failure shrinks to one role.

The run goes through the WSGI application (Django alone, inside the test's transaction)
and through the ASGI application uvicorn serves, whose front cache and event-loop routes
answer some requests before Django sees them. Hostile shapes the schema generator would
rarely draw (other scripts' digits in ids, deeply nested bodies, integers of hundreds of
digits) have a strategy of their own.

The bounded run here is part of `make test`; `make fuzz` runs many more examples.
"""

import functools
import itertools
import json
import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import DatabaseError, close_old_connections, connection, transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
)

from delivery.services import courier_create
from events.services import webhook_create
from geomarket.asgi import application
from geomarket.lane import async_db
from inventory.models import Inventory
from orders.models import Order
from tests import factories
from tests.market import build_market, order_body

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
ROLES = ("anonymous", "customer", "owner", "courier", "operator")
SCHEMA_URL = "/api/schema/?format=json"

# An order's live stream answers for as long as the client listens: its own tests
# (tests/tracking/test_stream.py) read it as a client does.
ENDLESS = r"/stream/$"
by_wsgi = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application()).exclude(
    path_regex=ENDLESS
)
# Loaded at collection, before the test environment lets the test client's host in.
by_asgi = schemathesis.openapi.from_asgi(
    SCHEMA_URL, application, headers={"Host": "localhost"}
).exclude(path_regex=ENDLESS)
fuzz_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck)
)


# Rules between query parameters, which JSON Schema cannot state (`date_from` after
# `date_to`, `created_after` after `created_before`, `min_price` above `max_price`,
# `open_at` beside `open_now=true`, a track's `since` after its `until`, which is now
# when not given); the serializers file their errors here.
CROSS_PARAMETER_ERRORS = {"date_from", "created_after", "min_price", "open_at", "since"}
# Query parameters that name something that may not exist, as a body's ids do: an event
# cursor past the feed's last event.
DATA_PARAMETER_ERRORS = {"after"}


def positive_data_accepted_where_the_schema_can_say(ctx, response, case):
    """Schema-valid requests are accepted, but for refusals the schema cannot foresee: a
    body names rows that may not exist (a product, a category) and carries rules JSON
    Schema cannot state (a closed ring, a strong password, a non-zero stock change), and
    query parameters can contradict one another or name what may not exist."""
    if response.status_code == 400:
        if not isinstance(case.body, NotSet):
            return None
        errors = response.json()
        refusable = CROSS_PARAMETER_ERRORS | DATA_PARAMETER_ERRORS
        if isinstance(errors, dict) and errors and set(errors) <= refusable:
            return None
    return positive_data_acceptance(ctx, response, case)


def _trimmed(value):
    """`value` with its texts trimmed as DRF's text fields trim them before they check
    their length (`trim_whitespace`)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_trimmed(item) for item in value]
    if isinstance(value, dict):
        return {key: _trimmed(item) for key, item in value.items()}
    return value


def negative_data_rejected_but_for_trimmed_text(ctx, response, case):
    """Schema-invalid requests are refused, but for a body that is valid once its texts
    are trimmed: a name of 100 letters after a form feed is a name of 100 letters."""
    if 200 <= response.status_code < 300 and not isinstance(case.body, NotSet):
        trimmed = _trimmed(case.body)
        if trimmed != case.body and any(body.is_valid(trimmed) for body in case.operation.body):
            return None
    return negative_data_rejection(ctx, response, case)


CHECKS = {
    "excluded_checks": [positive_data_acceptance, negative_data_rejection],
    "additional_checks": [
        positive_data_accepted_where_the_schema_can_say,
        negative_data_rejected_but_for_trimmed_text,
    ],
}


def _build_callers(as_user, settings) -> dict:
    """Real data, a token for each kind of caller, and the ids of rows each path names;
    limits lifted so fuzzing reaches the endpoints themselves (the limits have tests of
    their own)."""
    for name in ("SUGGEST", "TOKEN", "REGISTER", "ORDER", "ORDER_IP"):
        setattr(settings, f"{name}_RATE_LIMIT_PER_MINUTE", 10**6)
    market = build_market(as_user)
    courier_user = factories.user()
    courier = courier_create(
        user=courier_user, name="Fuzz", vehicle="bike", capacity=2, status="available"
    )
    order = market["client"].post("/api/v1/orders/", order_body(market, (market["bread"], 2)))
    assert order.status_code == 201, order.content
    Order.objects.filter(pk=order.json()["id"]).update(courier=courier)
    tokens = {
        "customer": market["customer"].auth_token.key,
        "owner": market["owner"].auth_token.key,
        "courier": courier_user.auth_token.key,
        "operator": factories.user(is_staff=True).auth_token.key,
    }
    headers = {
        role: ({"Authorization": f"Token {tokens[role]}"} if role in tokens else {})
        for role in ROLES
    }
    ids = {
        "merchant_id": market["shop"].pk,
        "zone_id": market["zone"].pk,
        "product_id": market["bread"].pk,
        "category_id": market["bread"].category_id,
        "inventory_id": Inventory.objects.get(product=market["bread"]).pk,
        "order_id": order.json()["id"],
        "courier_id": courier.pk,
        # A public address: creating it passes the address check without allowing private
        # ones; nothing here delivers to it.
        "webhook_id": webhook_create(
            created_by=market["owner"],
            merchant_id=market["shop"].pk,
            url="https://93.184.215.14/hook",
            event_types=[],
        ).pk,
    }
    return {"headers": headers, "ids": ids}


@pytest.fixture
def callers(db, as_user, settings):
    return _build_callers(as_user, settings)


@pytest.fixture
def served_callers(transactional_db, as_user, settings):
    """As `callers`, committed: the ASGI application serves from other threads and from
    its own pool. The pool lives on schemathesis' event loop, and is closed there."""
    yield _build_callers(as_user, settings)
    schemathesis_asgi._get_portal().call(async_db.pools.close)


@pytest.fixture
def wsgi_in_transaction():
    """Requests go to the WSGI application directly: like Django's test client, keep them
    from closing the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# The role travels in the generated case, under a header of its own that is taken off
# before the request is sent: schemathesis cannot add a strategy of ours to a test that
# also runs the schema's examples. Cases that its coverage phase builds without drawing
# take the roles in turn.
ROLE_HEADER = "X-Fuzz-Role"
_turns = itertools.cycle(ROLES)


def _with_role(pair):
    case, role = pair
    case.headers = {**(case.headers or {}), ROLE_HEADER: role}
    return case


@by_wsgi.hook
def before_generate_case(context, strategy):
    return st.tuples(strategy, st.sampled_from(ROLES)).map(_with_role)


# Through WSGI, `make test` runs the schema's examples and the coverage phase (every
# boundary, empty and missing value, undeclared method), while drawn cases go through ASGI
# below; `make fuzz` adds drawn cases here too, many of them.
by_wsgi.config.phases.update(phases=os.environ.get("FUZZ_PHASES", "examples,coverage").split(","))


@by_wsgi.parametrize()
@fuzz_settings
def test_every_check_passes_through_wsgi(case, callers, wsgi_in_transaction):
    role = (case.headers or {}).pop(ROLE_HEADER, None) or next(_turns)
    # Each request runs in a savepoint of the test's transaction. A statement that fails
    # outside the view's own atomic blocks (one the database refused, of what validation
    # let through) leaves the transaction aborted: every later request would then fail,
    # and the shrinker would pin the failure on an innocent one. Rolled back to the
    # savepoint, the transaction goes on, and the request that did it is the one named.
    savepoint = transaction.savepoint()
    response = None
    try:
        response = case.call_and_validate(headers=callers["headers"][role], **CHECKS)
    finally:
        refused = _refused_statement()
        if refused is None:
            transaction.savepoint_commit(savepoint)
        else:
            transaction.savepoint_rollback(savepoint)
    if refused is not None:
        pytest.fail(
            f"{case.method} {case.formatted_path} ({case.query=}, {case.body=}) left the"
            " transaction aborted: the database refused a statement outside an atomic block;"
            f" answered {response.status_code} {response.text[:300]}"
        )


def _refused_statement() -> DatabaseError | None:
    """The error the transaction answers with, when the last request left it aborted."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return exc
    return None


OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in by_asgi.raw_schema["paths"].items()
    for method, operation in item.items()
    if method in {"get", "post", "put", "patch", "delete"} and not re.search(ENDLESS, path)
]


@functools.cache
def _asgi_cases(mode: GenerationMode, pinned: tuple) -> st.SearchStrategy:
    return by_asgi.as_strategy(mode, path_parameters=dict(pinned))


@settings(
    max_examples=EXAMPLES * len(OPERATIONS),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_every_check_passes_through_asgi(data, served_callers):
    """One test over every operation, so the served data is committed once."""
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    # Drawn ids rarely name a row: half the cases name the rows the callers can reach.
    ids = served_callers["ids"] if data.draw(st.booleans()) else {}
    case = data.draw(_asgi_cases(mode, tuple(sorted(ids.items()))))
    role = data.draw(st.sampled_from(ROLES))
    case.call_and_validate(headers=served_callers["headers"][role], **CHECKS)


# Characters for which `str.isdigit()` is true but which are not ASCII digits: `int()`
# refuses the first and reads the others.
FOREIGN_DIGITS = ("\u00b2", "\u0663", "\uff11", "\u0967\u0968")
NESTING = (1_000, 5_000)
HUGE = 10**300


def _id_like(parameter: dict) -> bool:
    schema = parameter["schema"]
    return schema.get("type") == "integer" or schema.get("pattern") == "^[-a-zA-Z0-9_]+$"


def _hostile_targets() -> list[tuple[str, str, str, str | None]]:
    """(shape, method, path, parameter) for every place a shape can go."""
    targets = []
    for method, path, operation in OPERATIONS:
        for parameter in operation.get("parameters", ()):
            if parameter["in"] != "query":
                continue
            if _id_like(parameter):
                targets.append(("foreign digits", method, path, parameter["name"]))
            if parameter["schema"].get("type") in {"integer", "number"}:
                targets.append(("huge number", method, path, parameter["name"]))
        if "requestBody" in operation:
            targets.append(("deep body", method, path, None))
            targets.append(("huge numbers in body", method, path, None))
    return targets


def _declared_properties(node) -> set[str]:
    if isinstance(node, dict):
        properties = node.get("properties")
        names = set(properties) if isinstance(properties, dict) else set()
        return names.union(*(_declared_properties(item) for item in node.values()))
    if isinstance(node, list):
        return set().union(*(_declared_properties(item) for item in node))
    return set()


def _body_properties(operation) -> set[str]:
    """The names the operation's body declares, at any depth (its schemas come bundled).
    Numbers under other names are keys the API ignores, no test of anything: another
    operation's `timezone` in a courier's PATCH changes nothing and is answered 200."""
    return _declared_properties([body.definition for body in operation.body])


def _huge_numbers(value, declared: set[str]):
    """`value` with every number the API reads in it, a GeoJSON coordinate as much as a
    quantity, made an integer of hundreds of digits."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return HUGE
    if isinstance(value, list):
        return [_huge_numbers(item, declared) for item in value]
    if isinstance(value, dict):
        return {
            key: _huge_numbers(item, declared) if key in declared else item
            for key, item in value.items()
        }
    return value


@st.composite
def hostile_requests(draw, ids):
    shape, method, path, parameter = draw(st.sampled_from(HOSTILE_TARGETS))
    role = draw(st.sampled_from(ROLES))
    operation = by_asgi.find_operation_by_label(f"{method} {path}")
    case = draw(operation.as_strategy())
    query = dict(case.query or {})
    body = None if isinstance(case.body, NotSet) else case.body
    if shape == "foreign digits":
        digits = draw(st.sampled_from(FOREIGN_DIGITS))
        query[parameter] = draw(st.sampled_from([digits, f"1{digits}", f"{digits}1"]))
        content = None if body is None else json.dumps(body)
    elif shape == "huge number":
        query[parameter] = str(HUGE)
        content = None if body is None else json.dumps(body)
    elif shape == "deep body":
        depth = draw(st.sampled_from(NESTING))
        content = draw(st.sampled_from(["[" * depth + "]" * depth, '{"a":' * depth]))
    else:
        huge = _huge_numbers(body, _body_properties(operation))
        # A body without numbers (a PATCH of nothing) has no place for this shape.
        assume(huge != body)
        content = json.dumps(huge)
    url = path
    for name, value in ids.items():
        url = url.replace("{" + name + "}", str(value))
    return role, case, {"method": method, "url": url, "params": query, "data": content}


HOSTILE_TARGETS = _hostile_targets()


# A few examples for each place a shape can go, so that each is tried in every run.
@settings(
    max_examples=EXAMPLES * len(HOSTILE_TARGETS),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_hostile_shapes_are_refused_with_a_declared_4xx(data, served_callers):
    role, case, request = data.draw(hostile_requests(served_callers["ids"]))
    headers = {**served_callers["headers"][role]}
    if request["data"] is not None:
        headers["Content-Type"] = "application/json"
    with schemathesis_asgi.get_client(application) as client:
        response = client.request(
            request["method"],
            f"http://{schemathesis_asgi.HOST}{request['url']}",
            params=request["params"],
            data=request["data"],
            headers=headers,
        )
    assert 400 <= response.status_code < 500, (request, response.status_code, response.text)
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
