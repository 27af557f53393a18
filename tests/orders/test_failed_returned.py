"""A delivery that failed (`picked_up -> failed`, by its courier or an operator, with a
reason) and its return to the merchant (`failed -> returned`, by the owner or an
operator), which gives back the stock and the slot in the transition's transaction."""

import pytest
from django.utils import timezone

from delivery.models import Courier
from delivery.selectors import courier_open_orders
from events.models import Event
from geomarket.errors import Conflict
from inventory.models import Inventory
from merchants.models import SlotBooking
from orders.models import FailureReason, Order, OrderStatusChange
from orders.services import order_transition
from tests import factories
from tests.market import ORDERS, api_client_as, build_market
from tests.orders.test_slots import booked, for_slot, plan, tomorrow_at
from tests.rows import rows
from tests.threads import run_in_threads
from tests.tracking.tracked import order_with_courier

pytestmark = pytest.mark.django_db


def status(client, order_id: int, **body):
    return client.post(f"{ORDERS}{order_id}/status/", body, format="json")


@pytest.fixture
def picked_up(market, as_user):
    """(order, courier, courier's client): the market's order of 2 loaves, picked up."""
    order, courier, courier_user = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="picked_up")
    Courier.objects.filter(pk=courier.pk).update(status="busy", capacity=1)
    return order, courier, as_user(courier_user)


@pytest.fixture
def clients(market, picked_up, as_user) -> dict:
    """The picked-up order's parties' clients, by role."""
    return {
        "customer": market["client"],
        "owner": market["owner_client"],
        "courier": picked_up[2],
        "operator": as_user(factories.user(is_staff=True)),
    }


@pytest.mark.parametrize("reason", FailureReason.values)
def test_the_courier_records_a_failed_delivery_with_its_reason(market, picked_up, reason):
    order, _, courier_client = picked_up
    answer = status(courier_client, order.pk, status="failed", reason=reason)
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["status"], answer.json()["failure_reason"]) == ("failed", reason)
    detail = market["client"].get(f"{ORDERS}{order.pk}/").json()
    assert (detail["status"], detail["failure_reason"]) == ("failed", reason)
    assert detail["history"][-1]["reason"] == reason


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "lost"}, {"reason": "Other"}])
def test_a_failure_without_a_known_reason_is_400_and_changes_nothing(market, picked_up, body):
    order, _, courier_client = picked_up
    before = rows(Order, OrderStatusChange, Event)
    answer = status(courier_client, order.pk, status="failed", **body)
    assert answer.status_code == 400
    assert "reason" in answer.json()
    assert rows(Order, OrderStatusChange, Event) == before


def test_a_failed_delivery_frees_its_courier(market, picked_up):
    order, courier, courier_client = picked_up
    assert status(courier_client, order.pk, status="failed", reason="refused").status_code == 200
    assert Courier.objects.get(pk=courier.pk).status == "available"
    assert not courier_open_orders(courier_id=courier.pk).exists()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("customer", False), ("owner", False), ("courier", True), ("operator", True)],
)
def test_who_may_fail_a_delivery(market, picked_up, clients, role, allowed):
    order, _, _ = picked_up
    client = clients[role]
    answer = status(client, order.pk, status="failed", reason="customer_absent")
    assert answer.status_code == (200 if allowed else 409)
    assert Order.objects.get(pk=order.pk).status == ("failed" if allowed else "picked_up")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("customer", False), ("owner", True), ("courier", False), ("operator", True)],
)
def test_who_may_return_a_failed_delivery(market, picked_up, clients, role, allowed):
    order, _, _ = picked_up
    Order.objects.filter(pk=order.pk).update(status="failed", failure_reason="refused")
    client = clients[role]
    answer = status(client, order.pk, status="returned")
    assert answer.status_code == (200 if allowed else 409)
    assert Order.objects.get(pk=order.pk).status == ("returned" if allowed else "failed")


def test_returning_gives_back_the_stock_once(market, picked_up):
    order, _, courier_client = picked_up
    assert Inventory.objects.get(product=market["bread"]).quantity == 18
    assert status(courier_client, order.pk, status="failed", reason="damaged").status_code == 200
    # Failing is not returning: the goods are still with the courier.
    assert Inventory.objects.get(product=market["bread"]).quantity == 18
    answer = status(market["owner_client"], order.pk, status="returned")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["failure_reason"] == "damaged"
    assert Inventory.objects.get(product=market["bread"]).quantity == 20
    assert status(market["owner_client"], order.pk, status="returned").status_code == 409
    assert Inventory.objects.get(product=market["bread"]).quantity == 20


def test_returning_frees_the_slot(market):
    shop = market["shop"]
    plan(shop, capacity=1)
    starts_at = tomorrow_at(12)
    placed = market["client"].post(ORDERS, for_slot(market, starts_at), format="json").json()
    assert booked(shop, starts_at) == 1
    Order.objects.filter(pk=placed["id"]).update(status="failed", failure_reason="refused")
    assert status(market["owner_client"], placed["id"], status="returned").status_code == 200
    assert booked(shop, starts_at) == 0
    assert SlotBooking.objects.filter(merchant=shop).count() <= 1


def test_failed_and_returned_orders_are_no_revenue(market, picked_up):
    order, _, courier_client = picked_up
    stats = market["owner_client"].get(f"{ORDERS}stats/").json()
    assert (stats["revenue"], stats["by_status"]["picked_up"]) == (str(order.total), 1)
    assert status(courier_client, order.pk, status="failed", reason="refused").status_code == 200
    stats = market["owner_client"].get(f"{ORDERS}stats/").json()
    assert (stats["revenue"], stats["by_status"]["failed"], stats["orders"]) == ("0.00", 1, 1)
    assert status(market["owner_client"], order.pk, status="returned").status_code == 200
    stats = market["owner_client"].get(f"{ORDERS}stats/").json()
    assert (stats["revenue"], stats["by_status"]["returned"], stats["orders"]) == ("0.00", 1, 1)


def test_the_list_filters_by_the_new_statuses(market, picked_up):
    order, _, courier_client = picked_up
    status(courier_client, order.pk, status="failed", reason="refused")
    listed = market["client"].get(ORDERS, {"status": "failed"}).json()
    assert [row["id"] for row in listed["results"]] == [order.pk]
    assert listed["results"][0]["failure_reason"] == "refused"
    assert market["client"].get(ORDERS, {"status": "returned"}).json()["count"] == 0


def test_each_transition_is_an_event(market, picked_up):
    order, _, courier_client = picked_up
    since = timezone.now()
    status(courier_client, order.pk, status="failed", reason="address_not_found")
    status(market["owner_client"], order.pk, status="returned")
    events = Event.objects.filter(order_id=order.pk, created_at__gte=since).order_by("id")
    assert [(event.type, event.data) for event in events] == [
        (
            "order.status_changed",
            {"from_status": "picked_up", "to_status": "failed", "reason": "address_not_found"},
        ),
        (
            "order.status_changed",
            {"from_status": "failed", "to_status": "returned", "reason": ""},
        ),
    ]


def test_tracking_a_failed_order_has_no_eta(market, picked_up):
    order, _, courier_client = picked_up
    status(courier_client, order.pk, status="failed", reason="refused")
    tracking = market["client"].get(f"{ORDERS}{order.pk}/tracking/").json()
    assert (tracking["status"], tracking["eta_s"]) == ("failed", None)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_returns_give_back_the_stock_once():
    market = build_market(api_client_as)
    order, _, _ = order_with_courier(market)
    Order.objects.filter(pk=order.pk).update(status="failed", failure_reason="refused")
    operator = factories.user(is_staff=True)

    def give_back(actor):
        def run():
            try:
                order_transition(order_id=order.pk, actor=actor, to_status="returned")
            except Conflict as exc:  # the loser's refusal is its result
                return exc.code
            return "returned"

        return run

    results = run_in_threads(give_back(market["shop"].owner), give_back(operator))
    assert sorted(results) == ["invalid_transition", "returned"]
    assert Inventory.objects.get(product=market["bread"]).quantity == 20
    changes = OrderStatusChange.objects.filter(order=order, to_status="returned")
    assert changes.count() == 1
