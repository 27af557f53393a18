"""Cancelling orders while dispatch assigns them, each side in its own thread and database
connection.

What the services promise, and these tests hold them to:
- `order_transition` locks the order first; cancelling returns the stock in the same
  transaction and, when the order had a courier, recomputes that courier's status.
- `orders_assign_priority` takes only waiting orders (`confirmed|preparing|ready`, no
  courier) and available couriers, both with SKIP LOCKED: it never waits, never assigns
  an order twice and never fills a courier beyond its capacity.
- `courier_status_refresh`: busy at capacity, available below it.

A cancelled order keeps the courier it had as a record; it no longer counts against that
courier's capacity, nor appears among the courier's open orders.
"""

import random
import threading
import time
from functools import partial

import pytest
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from delivery.models import Courier
from delivery.selectors import courier_open_orders
from delivery.services import courier_create, orders_assign_priority
from inventory.models import Inventory
from orders.models import ACTIVE_DELIVERY_STATUSES, Order, OrderStatus, OrderStatusChange
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.threads import Worker, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

STOCK = 100


@pytest.fixture
def shop():
    merchant = factories.merchant()
    factories.zone(merchant=merchant, min_order="0.00")
    product = factories.product(merchant=merchant, price="1.00")
    factories.stock(product=product, quantity=STOCK)
    return {"merchant": merchant, "product": product, "buyer": factories.user()}


def place(shop) -> Order:
    merchant = shop["merchant"]
    return order_place(
        buyer=shop["buyer"],
        merchant_id=merchant.pk,
        lines=[OrderLine(shop["product"].pk, 1)],
        delivery_address={
            "line1": "A",
            "city": "Berlin",
            "postal_code": "10115",
            "location": Point(merchant.location.x, merchant.location.y, srid=4326),
        },
    )


def courier_near(shop, *, capacity: int = 1, offset: float = 0.001) -> Courier:
    merchant = shop["merchant"]
    courier = courier_create(
        user=factories.user(), name="Rider", vehicle="bike", capacity=capacity, status="available"
    )
    Courier.objects.filter(pk=courier.pk).update(
        location=Point(merchant.location.x + offset, merchant.location.y, srid=4326),
        location_updated_at=timezone.now(),
    )
    return courier


def cancel(shop, order_id: int) -> Order:
    return order_transition(
        order_id=order_id, actor=shop["merchant"].owner, to_status=OrderStatus.CANCELLED
    )


class Held(Worker):
    """Runs `work` in a transaction of its own and keeps it open, locks and all, until
    `release()`: the other side then meets exactly what `work` locked."""

    def __init__(self, work):
        super().__init__(self._hold)
        self.held = work
        self.done = threading.Event()
        self._release = threading.Event()

    def _hold(self):
        try:
            with transaction.atomic():
                self.result = self.held()
                self.done.set()
                self._release.wait(30)
            return self.result
        finally:
            self.done.set()

    def release(self):
        self._release.set()
        return self.outcome(30)


class Call(Worker):
    """Runs `work` on a connection of its own; records its backend pid, so the test can
    see whether it is waiting for a lock."""

    def __init__(self, work):
        super().__init__(self._call)
        self.call = work
        self.pid = None
        self.started = threading.Event()

    def _call(self):
        # In one transaction with the call, so that the pid is the server session the
        # call runs on, through a transaction pooler too.
        with transaction.atomic():
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
            finally:
                self.started.set()
            return self.call()

    def outcome(self, timeout: float = 30):
        return super().outcome(timeout)


def waits_for_a_lock(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
        if row is not None and row[0] == "Lock":
            return True
        time.sleep(0.05)
    return False


def assert_courier_consistent(courier: Courier) -> None:
    courier.refresh_from_db()
    active = Order.objects.filter(courier=courier, status__in=ACTIVE_DELIVERY_STATUSES).count()
    assert active <= courier.capacity
    expected = "busy" if active >= courier.capacity else "available"
    assert courier.status == expected, f"courier {courier.pk}: {active}/{courier.capacity}"
    assert not courier_open_orders(courier_id=courier.pk).filter(status="cancelled").exists()


def stock_left(shop) -> int:
    return Inventory.objects.get(product=shop["product"]).quantity


def test_cancel_during_assignment_waits_then_frees_the_courier(shop):
    order = place(shop)
    courier = courier_near(shop)
    assignment = Held(orders_assign_priority)
    assignment.start()
    assert assignment.done.wait(30)
    assert [a["order_id"] for a in assignment.result.assignments] == [order.pk]

    canceller = Call(lambda: cancel(shop, order.pk))
    canceller.start()
    assert canceller.started.wait(10)
    assert waits_for_a_lock(canceller.pid), "the cancel did not wait for the assignment's lock"
    assignment.release()
    cancelled = canceller.outcome()

    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.courier_id == courier.pk  # the record of who had it
    assert_courier_consistent(courier)
    assert courier.status == "available"
    assert stock_left(shop) == STOCK
    # The freed slot is real: the next order goes to the same courier.
    following = place(shop)
    assert [a["order_id"] for a in orders_assign_priority().assignments] == [following.pk]
    assert_courier_consistent(courier)
    assert courier.status == "busy"


def test_assignment_skips_an_order_being_cancelled_without_waiting(shop):
    order = place(shop)
    other = place(shop)
    courier = courier_near(shop, capacity=2)
    canceller = Held(lambda: cancel(shop, order.pk))
    canceller.start()
    assert canceller.done.wait(30)

    assignment = Call(orders_assign_priority)
    assignment.start()
    result = assignment.outcome(timeout=15)
    canceller.release()

    assert [a["order_id"] for a in result.assignments] == [other.pk]
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.courier_id is None
    assert_courier_consistent(courier)
    assert courier.status == "available"  # one of two slots taken
    assert orders_assign_priority().assignments == []
    assert stock_left(shop) == STOCK - 1


def test_cancelling_an_assigned_order_while_its_courier_gets_another(shop):
    """The cancel recounts the courier while an assignment holds it, and the assignment
    counted the order being cancelled as still active."""
    first = place(shop)
    courier = courier_near(shop, capacity=2)
    orders_assign_priority()
    second = place(shop)
    third = place(shop)

    assignment = Held(orders_assign_priority)
    assignment.start()
    assert assignment.done.wait(30)
    # One free slot then: the order being cancelled still counted.
    assert [a["order_id"] for a in assignment.result.assignments] == [second.pk]

    canceller = Call(lambda: cancel(shop, first.pk))
    canceller.start()
    assert canceller.started.wait(10)
    assert waits_for_a_lock(canceller.pid), "the cancel did not wait for the courier's lock"
    assignment.release()
    canceller.outcome()

    assert_courier_consistent(courier)
    assert courier.status == "available"
    assert [a["order_id"] for a in orders_assign_priority().assignments] == [third.pk]
    assert_courier_consistent(courier)
    assert courier.status == "busy"


def test_random_cancels_racing_dispatch_leave_a_consistent_state(shop):
    rng = random.Random(8)
    orders = [place(shop).pk for _ in range(24)]
    couriers = [
        courier_near(shop, capacity=rng.choice([1, 2]), offset=rng.uniform(0.0005, 0.01))
        for _ in range(6)
    ]
    to_cancel = rng.sample(orders, 12)
    cancel_batches = [to_cancel[0::2], to_cancel[1::2]]
    answers: list[tuple[float, list[dict]]] = []
    cancelled_at: dict[int, float] = {}

    def dispatcher():
        for _ in range(4):
            started = time.monotonic()
            answers.append((started, orders_assign_priority().assignments))
            time.sleep(rng.uniform(0, 0.02))

    def merchant(batch):
        for order_id in batch:
            cancel(shop, order_id)
            cancelled_at[order_id] = time.monotonic()
            time.sleep(rng.uniform(0, 0.02))

    run_in_threads(dispatcher, dispatcher, *[partial(merchant, b) for b in cancel_batches])

    # Every cancel went through, once, with its stock back.
    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == len(to_cancel)
    for order_id in to_cancel:
        assert (
            OrderStatusChange.objects.filter(order_id=order_id, to_status="cancelled").count() == 1
        )
    assert stock_left(shop) == STOCK - (len(orders) - len(to_cancel))

    # No order in two answers, and the database agrees with the answers.
    given = [(a["order_id"], a["courier_id"]) for _, batch in answers for a in batch]
    assert len({order_id for order_id, _ in given}) == len(given)
    assert dict(given) == dict(Order.objects.exclude(courier=None).values_list("id", "courier_id"))
    # An order whose cancel had returned before an assignment began is not in its answer.
    for started, batch in answers:
        for a in batch:
            assert not cancelled_at.get(a["order_id"], float("inf")) < started, a

    for courier in couriers:
        assert_courier_consistent(courier)
    # No slot was lost to a cancelled order: one more run leaves either no waiting order
    # or no courier with room.
    orders_assign_priority()
    for courier in couriers:
        assert_courier_consistent(courier)
    waiting = Order.objects.filter(courier=None, status=OrderStatus.CONFIRMED).exists()
    assert not waiting or all(courier.status == "busy" for courier in couriers)
