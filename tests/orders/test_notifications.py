"""The confirmation email: sent with no transaction open, and once however it is delivered."""

import time

import pytest
from django.core import mail
from django.db import connection

from orders.models import OrderNotification
from orders.tasks import send_order_confirmation
from tests.market import ORDERS, order_body
from tests.threads import Worker
from tests.watching_email import go_on, sending

pytestmark = pytest.mark.django_db(transaction=True)


def placed_order(market) -> int:
    response = market["client"].post(ORDERS, order_body(market, (market["bread"], 2)))
    assert response.status_code == 201
    return response.json()["id"]


def test_the_email_is_sent_with_no_transaction_open(market, watched_email):
    order_id = placed_order(market)
    assert send_order_confirmation(order_id) is True
    assert watched_email == [
        {
            "subject": f"Your order {order_id} at {market['shop'].name} is confirmed",
            "in_atomic_block": False,
            "autocommit": True,
        }
    ]
    assert OrderNotification.objects.filter(order_id=order_id, kind="confirmation").count() == 1


def test_two_deliveries_at_once_send_one_email(market, watched_email):
    order_id = placed_order(market)
    go_on.clear()
    first = Worker(lambda: send_order_confirmation(order_id))
    first.start()
    second = None
    try:
        assert sending.wait(60), "the first delivery never sent"
        second = Worker(lambda: send_order_confirmation(order_id))
        second.start()
        # The second delivery waits for the first, while the first has sent and not yet
        # recorded: it must not send meanwhile.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not lock_waiters():
            time.sleep(0.05)
        assert lock_waiters() == 1, "the second delivery did not wait"
        assert len(watched_email) == 1
    finally:
        go_on.set()
        results = [first.outcome()] + ([second.outcome()] if second else [])
    assert results == [True, False]
    assert len(watched_email) == 1
    assert OrderNotification.objects.filter(order_id=order_id).count() == 1


def lock_waiters() -> int:
    """Connections to the test database waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_an_order_cancelled_before_its_confirmation_went_out_is_not_confirmed(market):
    order_id = placed_order(market)
    response = market["client"].post(f"{ORDERS}{order_id}/status/", {"status": "cancelled"})
    assert response.status_code == 200
    assert send_order_confirmation(order_id) is False
    assert mail.outbox == []
