"""Handover codes: a merchant that requires one gets its orders a 4-digit code at pickup,
stored only as a keyed hash, shown to the order's customer alone, and asked of the
courier at `delivered`; wrong codes are counted under the order's lock, and after 5 only
an operator may deliver the order."""

import json
import re

import pytest
from rest_framework.renderers import JSONRenderer

from delivery.services import courier_create
from events.models import Event
from events.services import webhook_body
from events.streams import stream_entries_of
from merchants.models import Merchant
from orders.handover import MAX_FAILURES
from orders.models import Order, OrderStatusChange
from orders.selectors import order_detail
from orders.serializers import order_detail_payload
from orders.services import order_transition
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.threads import run_in_threads
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db


def status(client, order_id: int, **body):
    return client.post(f"{ORDERS}{order_id}/status/", body, format="json")


def picked_up_with_code(market, as_user) -> dict:
    """The market's order, its merchant requiring a code, picked up by its courier: the
    order, the code as its customer reads it, and every party's client."""
    Merchant.objects.filter(pk=market["shop"].pk).update(require_handover_code=True)
    order, _, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="ready")
    courier = as_user(courier_user)
    assert status(courier, order.pk, status="picked_up").status_code == 200
    code = market["client"].get(f"{ORDERS}{order.pk}/").json()["handover_code"]
    return {
        "order": order,
        "code": code,
        "customer": market["client"],
        "owner": market["owner_client"],
        "courier": courier,
        "operator": as_user(factories.user(is_staff=True)),
        "other customer": as_user(factories.user()),
        "anonymous": api_client_as(None),
    }


@pytest.fixture
def handover(market, as_user) -> dict:
    return picked_up_with_code(market, as_user)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10000:04d}"


def failures(order) -> int:
    return Order.objects.get(pk=order.pk).handover_failures


def test_pickup_makes_a_code_stored_only_as_a_keyed_hash(handover):
    stored = Order.objects.get(pk=handover["order"].pk).handover_code_hash
    assert re.fullmatch(r"[0-9]{4}", handover["code"])
    # A random salt and an HMAC-SHA256, hex: the code itself is in no column.
    assert re.fullmatch(r"[0-9a-f]{32}\$[0-9a-f]{64}", stored)


def test_codes_differ_from_order_to_order(market, as_user):
    codes = {picked_up_with_code(market, as_user)["code"] for _ in range(8)}
    # Eight draws of 10,000 codes all alike would be a constant, not a random code.
    assert len(codes) > 1


# Who reads the code in the order's detail and tracking: (status code, sees the code).
SEEING = {
    "customer": (200, True),
    "owner": (200, False),
    "courier": (200, False),
    "operator": (200, False),
    "other customer": (404, False),
    "anonymous": (401, False),
}


@pytest.mark.parametrize("role", SEEING)
@pytest.mark.parametrize("path", ["", "tracking/"])
def test_only_the_customer_reads_the_code(handover, role, path):
    answer = handover[role].get(f"{ORDERS}{handover['order'].pk}/{path}")
    expected_status, sees = SEEING[role]
    assert answer.status_code == expected_status
    if expected_status == 200:
        assert answer.json()["handover_code"] == (handover["code"] if sees else None)
    else:
        assert handover["code"] not in answer.content.decode()


def test_the_list_shows_no_code(handover):
    listed = handover["customer"].get(ORDERS).json()["results"]
    assert [row["id"] for row in listed] == [handover["order"].pk]
    assert "handover_code" not in listed[0]


def test_the_customers_answer_is_what_python_renders(market, handover):
    """The detail PostgreSQL renders, with the code put in, is the Python answer's bytes."""
    order_id = handover["order"].pk
    answer = handover["customer"].get(f"{ORDERS}{order_id}/")
    order = order_detail(user=market["customer"], order_id=order_id)
    by_python = order_detail_payload(order, viewer_id=market["customer"].pk)
    assert answer.content == JSONRenderer().render(by_python)
    assert by_python["handover_code"] == handover["code"]


def test_no_code_is_shown_once_delivered(handover):
    order_id = handover["order"].pk
    delivered = status(
        handover["courier"], order_id, status="delivered", handover_code=handover["code"]
    )
    assert delivered.status_code == 200
    assert handover["customer"].get(f"{ORDERS}{order_id}/").json()["handover_code"] is None


def test_the_courier_delivers_with_the_right_code(handover):
    order_id = handover["order"].pk
    answer = status(
        handover["courier"], order_id, status="delivered", handover_code=handover["code"]
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "delivered"
    assert failures(handover["order"]) == 0


def test_a_wrong_code_is_409_counted_and_changes_nothing_else(handover):
    order = handover["order"]
    history = OrderStatusChange.objects.filter(order=order).count()
    answer = status(
        handover["courier"], order.pk, status="delivered", handover_code=wrong(handover["code"])
    )
    assert answer.status_code == 409
    assert answer.json()["code"] == "handover_code_mismatch"
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.handover_failures, after.delivered_at) == ("picked_up", 1, None)
    assert OrderStatusChange.objects.filter(order=order).count() == history


@pytest.mark.parametrize("body", [{}, {"handover_code": ""}])
def test_a_missing_code_is_409_and_not_counted(handover, body):
    answer = status(handover["courier"], handover["order"].pk, status="delivered", **body)
    assert answer.status_code == 409
    assert answer.json()["code"] == "handover_code_mismatch"
    assert failures(handover["order"]) == 0
    assert Order.objects.get(pk=handover["order"].pk).status == "picked_up"


def test_after_five_wrong_codes_only_an_operator_delivers(handover):
    order_id = handover["order"].pk
    for attempt in range(1, MAX_FAILURES + 1):
        answer = status(
            handover["courier"], order_id, status="delivered", handover_code=wrong(handover["code"])
        )
        assert (answer.status_code, answer.json()["code"]) == (409, "handover_code_mismatch")
        assert failures(handover["order"]) == attempt
    right = status(
        handover["courier"], order_id, status="delivered", handover_code=handover["code"]
    )
    assert (right.status_code, right.json()["code"]) == (409, "handover_locked")
    assert failures(handover["order"]) == MAX_FAILURES
    assert Order.objects.get(pk=order_id).status == "picked_up"
    delivered = status(handover["operator"], order_id, status="delivered")
    assert delivered.status_code == 200, delivered.json()
    assert delivered.json()["status"] == "delivered"


def test_an_operator_needs_no_code(handover):
    answer = status(handover["operator"], handover["order"].pk, status="delivered")
    assert answer.status_code == 200
    assert failures(handover["order"]) == 0


# Who may deliver with the code in hand: the courier and operators; anyone else is
# refused before the code is looked at, and counts no try.
USING = {
    "customer": 409,
    "owner": 409,
    "other customer": 404,
    "anonymous": 401,
}


@pytest.mark.parametrize("role", USING)
@pytest.mark.parametrize("right", [True, False])
def test_no_one_else_may_use_the_code(handover, role, right):
    code = handover["code"] if right else wrong(handover["code"])
    answer = status(handover[role], handover["order"].pk, status="delivered", handover_code=code)
    assert answer.status_code == USING[role]
    if answer.status_code == 409:
        assert answer.json()["code"] == "invalid_transition"
    after = Order.objects.get(pk=handover["order"].pk)
    assert (after.status, after.handover_failures) == ("picked_up", 0)


def test_an_order_picked_up_without_the_setting_needs_no_code(market, as_user):
    order, _, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="ready")
    courier = as_user(courier_user)
    assert status(courier, order.pk, status="picked_up").status_code == 200
    assert market["client"].get(f"{ORDERS}{order.pk}/").json()["handover_code"] is None
    # Turned on after pickup: the order was given no code and is not asked for one.
    Merchant.objects.filter(pk=market["shop"].pk).update(require_handover_code=True)
    assert status(courier, order.pk, status="delivered").status_code == 200


def test_a_code_given_at_pickup_is_asked_for_after_the_setting_is_turned_off(market, handover):
    Merchant.objects.filter(pk=market["shop"].pk).update(require_handover_code=False)
    answer = status(handover["courier"], handover["order"].pk, status="delivered")
    assert (answer.status_code, answer.json()["code"]) == (409, "handover_code_mismatch")


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_codes_are_each_counted():
    market = build_market(api_client_as)
    handover = picked_up_with_code(market, api_client_as)
    order_id = handover["order"].pk
    courier = Order.objects.select_related("courier__user").get(pk=order_id).courier.user

    def try_wrong():
        try:
            order_transition(
                order_id=order_id,
                actor=courier,
                to_status="delivered",
                handover_code=wrong(handover["code"]),
            )
        except Exception as exc:  # the refusal is the result
            return getattr(exc, "code", repr(exc))
        return "delivered"

    assert run_in_threads(*[try_wrong] * 4) == ["handover_code_mismatch"] * 4
    assert failures(handover["order"]) == 4
    results = run_in_threads(*[try_wrong] * 3)
    assert sorted(results) == ["handover_code_mismatch"] + ["handover_locked"] * 2
    assert failures(handover["order"]) == MAX_FAILURES


def strings_in(value) -> set[str]:
    """Every string in a JSON value, keys and values alike."""
    if isinstance(value, dict):
        return set(value).union(*(strings_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(strings_in(item) for item in value))
    return {value} if isinstance(value, str) else set()


def test_no_other_answer_carries_the_code(market, as_user):
    """Every answer a party other than the customer gets about the order, and every
    event, stream entry and webhook body of it, from pickup to failure: the code is
    nowhere, not even as a `handover_code` of their own."""
    Merchant.objects.filter(pk=market["shop"].pk).update(require_handover_code=True)
    order, _, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="ready")
    courier, operator = as_user(courier_user), as_user(factories.user(is_staff=True))
    owner = market["owner_client"]
    answers = [status(courier, order.pk, status="picked_up")]
    code = market["client"].get(f"{ORDERS}{order.pk}/").json()["handover_code"]
    assert re.fullmatch(r"[0-9]{4}", code)
    for client in (courier, owner, operator):
        answers += [client.get(ORDERS), client.get(f"{ORDERS}{order.pk}/incidents/")]
    answers += [
        owner.get(f"/api/v1/merchants/{market['shop'].pk}/orders/"),
        operator.get(f"/api/v1/merchants/{market['shop'].pk}/orders/"),
        courier.get("/api/v1/couriers/me/orders/"),
        owner.get("/api/v1/events/"),
        operator.get("/api/v1/events/"),
        status(courier, order.pk, status="delivered", handover_code=wrong(code)),
        status(courier, order.pk, status="failed", reason="customer_absent"),
    ]
    assert [answer.status_code for answer in answers][:-2] == [200] * (len(answers) - 2)
    assert [answer.status_code for answer in answers][-2:] == [409, 200]
    events = list(Event.objects.filter(order_id=order.pk))
    assert {event.data.get("to_status") for event in events} >= {"picked_up", "failed"}
    shown = [answer.json() for answer in answers]
    shown += [json.loads(webhook_body(event)) for event in events]
    shown += [entry.data for entry in stream_entries_of(events)]
    assert not any(code in strings_in(body) for body in shown)
    assert not any(body.get("handover_code") for body in shown if isinstance(body, dict))


def test_a_replayed_order_is_answered_as_its_detail_code_included(market, as_user):
    """An `Idempotency-Key` replay answers the order as it stands now, and shows its
    customer what the detail shows: the code, once the order is picked up."""
    Merchant.objects.filter(pk=market["shop"].pk).update(require_handover_code=True)
    body = order_body(market, (market["bread"], 2))
    key = {"Idempotency-Key": "replayed-after-pickup"}
    placed = market["client"].post(ORDERS, body, format="json", headers=key)
    assert placed.status_code == 201
    order_id = placed.json()["id"]
    courier_user = factories.user()
    courier = courier_create(user=courier_user, name="Kim", vehicle="bike", status="available")
    Order.objects.filter(pk=order_id).update(courier=courier, status="ready")
    assert status(as_user(courier_user), order_id, status="picked_up").status_code == 200
    replayed = market["client"].post(ORDERS, body, format="json", headers=key)
    assert replayed.status_code == 201
    detail = market["client"].get(f"{ORDERS}{order_id}/").json()
    assert detail["handover_code"] is not None
    assert replayed.json() == detail
