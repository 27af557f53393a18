"""The merchants report counts failed deliveries apart from delivered orders: `failed`
by the day they failed (returned since or not), `failure_rate` over both, and nothing of
them in orders, revenue, shares or the other reports."""

import csv
import io
from datetime import UTC, datetime

import pytest

from orders.models import OrderStatus
from orders.services import order_transition
from tests import factories
from tests.analytics.test_rollups import (  # noqa: F401
    TO_DELIVERED,
    TO_FAILED,
    clock,
    ordered,
    shop_selling,
)

pytestmark = pytest.mark.django_db

MERCHANTS = "/api/v1/analytics/merchants/"
DAY = {"date_from": "2026-06-02", "date_to": "2026-06-02"}


@pytest.fixture
def outcomes(clock):  # noqa: F811
    """On 2026-06-02: a shop delivering one order and failing two, one of them returned
    (the next day), and a shop failing its only order."""
    clock[0] = datetime(2026, 6, 2, 10, tzinfo=UTC)
    mixed, failing = shop_selling(price="8.00"), shop_selling(price="3.00")
    ordered(mixed, *TO_DELIVERED)
    ordered(mixed, *TO_FAILED)
    ordered(failing, *TO_FAILED)
    clock[0] = datetime(2026, 6, 2, 23, 59, 59, tzinfo=UTC)
    returned = ordered(mixed, *TO_FAILED)
    clock[0] = datetime(2026, 6, 3, 0, 30, tzinfo=UTC)
    # Returned the next day: still a failure of the day it failed.
    order_transition(order_id=returned.pk, actor=mixed.operator, to_status=OrderStatus.RETURNED)
    return mixed, failing


def test_failed_orders_and_their_rate_are_apart_from_the_delivered(as_user, outcomes):
    mixed, failing = outcomes
    operator = as_user(factories.user(is_staff=True))
    rows = operator.get(MERCHANTS, DAY).json()
    delivered = mixed.shop.orders.get(status=OrderStatus.DELIVERED)
    assert [{k: v for k, v in row.items() if k != "name"} for row in rows] == [
        {
            "merchant_id": mixed.shop.pk,
            "orders": 1,
            "revenue": str(delivered.total),
            "revenue_share": 1.0,
            "rank": 1,
            "avg_delivery_minutes": 0.0,
            "failed": 2,
            "failure_rate": 0.6667,
        },
        {
            "merchant_id": failing.shop.pk,
            "orders": 0,
            "revenue": "0.00",
            "revenue_share": 0.0,
            "rank": 2,
            "avg_delivery_minutes": None,
            "failed": 1,
            "failure_rate": 1.0,
        },
    ]
    # The return, the next day, is no failure of that day.
    next_day = {"date_from": "2026-06-03", "date_to": "2026-06-03"}
    assert operator.get(MERCHANTS, next_day).json() == []


def test_failed_orders_are_in_no_other_report(as_user, outcomes):
    mixed, _ = outcomes
    operator = as_user(factories.user(is_staff=True))
    revenue = operator.get("/api/v1/analytics/revenue/", DAY).json()
    delivered = mixed.shop.orders.get(status=OrderStatus.DELIVERED)
    assert [(r["orders"], r["revenue"]) for r in revenue] == [(1, str(delivered.total))]
    top = operator.get("/api/v1/analytics/top-products/", DAY).json()
    assert [(r["merchant_id"], r["units_sold"]) for r in top] == [(mixed.shop.pk, 1)]


def test_the_csv_of_a_merchant_that_only_failed_has_an_empty_delivery_time(as_user, outcomes):
    _, failing = outcomes
    operator = as_user(factories.user(is_staff=True))
    answer = operator.get(MERCHANTS, {**DAY, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert list(rows[0])[-2:] == ["failed", "failure_rate"]
    assert {k: rows[1][k] for k in ("merchant_id", "avg_delivery_minutes", "failure_rate")} == {
        "merchant_id": str(failing.shop.pk),
        "avg_delivery_minutes": "",
        "failure_rate": "1.0",
    }
    combined = operator.get("/api/v1/orders/analytics/", DAY).json()
    assert combined["merchants"] == operator.get(MERCHANTS, DAY).json()
