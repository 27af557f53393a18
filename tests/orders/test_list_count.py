"""The orders list reads only the caller's orders and never counts past a bound."""

import pytest

from orders import selectors
from orders.selectors import orders_visible_to
from tests import factories
from tests.market import ORDERS, order_body

pytestmark = pytest.mark.django_db


def place(market, client=None):
    response = (client or market["client"]).post(ORDERS, order_body(market, (market["bread"], 2)))
    assert response.status_code == 201
    return response.json()["id"]


def test_a_users_orders_are_found_without_joining_every_order(market):
    # Conditions on the joined merchant's owner or courier's user would join every order
    # before filtering; ids compared directly let PostgreSQL read three indexes.
    sql = str(orders_visible_to(user=market["owner"]).query)
    assert "JOIN" not in sql.upper()


def test_counts_are_exact_up_to_the_bound_then_estimated(market, as_user, monkeypatch):
    monkeypatch.setattr(selectors, "ORDER_COUNT_BOUND", 3)
    placed = [place(market) for _ in range(5)]
    operator = as_user(factories.user(is_staff=True))
    body = operator.get(ORDERS, {"page_size": 2}).json()
    assert body["count_is_estimate"] is True
    assert body["count"] >= 4
    assert [row["id"] for row in body["results"]] == placed[::-1][:2]
    filtered = operator.get(ORDERS, {"status": "cancelled"}).json()
    assert (filtered["count"], filtered["count_is_estimate"]) == (0, False)
    stranger = as_user(factories.user())
    theirs = place(market, client=stranger)
    body = stranger.get(ORDERS).json()
    assert (body["count"], body["count_is_estimate"]) == (1, False)
    assert list(body)[:2] == ["count", "count_is_estimate"]
    assert [row["id"] for row in body["results"]] == [theirs]
