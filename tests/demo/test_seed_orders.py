"""The orders step of `seed_demo`: 90 days of orders before an anchor, as the services
would have written them."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from catalog.models import Product
from geomarket.accounts.models import User
from inventory.models import Inventory
from merchants.models import DeliveryZone, Merchant
from orders.models import FailureReason, Order, OrderItem, OrderStatus, OrderStatusChange
from orders.services import TRANSITIONS

pytestmark = pytest.mark.django_db

ANCHOR = datetime(2026, 3, 14, 18, 30, tzinfo=UTC)
SIZES = {
    "merchants": 6,
    "products_per_merchant": 25,
    "seed": 5,
    "orders": 300,
    "orders_until": ANCHOR.isoformat(),
}
IN_FLIGHT = {"confirmed", "preparing", "ready", "picked_up"}


def seed(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", stdout=out, stderr=err, **{**SIZES, **options})
    return out.getvalue(), err.getvalue()


def rows(sql: str, params: dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def scalar(sql: str, params: dict | None = None):
    return rows(sql, params)[0][0]


def statuses() -> dict[str, int]:
    return dict(rows("SELECT status, count(*) FROM orders_order GROUP BY status"))


def test_every_status_occurs_and_most_orders_are_delivered():
    seed()

    counts = statuses()
    assert set(counts) == set(OrderStatus.values)
    assert sum(counts.values()) == 300
    assert counts["delivered"] / 300 > 0.75
    # In flight is the last hour and a half only: a handful, not a share of history.
    assert sum(counts[status] for status in IN_FLIGHT) <= 10


def test_amounts_are_exact_to_the_cent():
    seed()

    assert Order.objects.count() == 300
    assert scalar("SELECT count(*) FROM orders_order WHERE total <> subtotal + delivery_fee") == 0
    # Every order has items, and its subtotal is their sum.
    assert (
        scalar(
            "SELECT count(*) FROM orders_order o LEFT JOIN ("
            " SELECT order_id, sum(line_total) AS lines FROM orders_orderitem GROUP BY order_id"
            ") i ON i.order_id = o.id WHERE i.lines IS DISTINCT FROM o.subtotal"
        )
        == 0
    )
    assert (
        scalar("SELECT count(*) FROM orders_orderitem WHERE line_total <> unit_price * quantity")
        == 0
    )
    assert scalar("SELECT count(*) FROM orders_order WHERE subtotal <= 0 OR delivery_fee < 0") == 0
    most_lines, smallest, largest = rows(
        "SELECT max(lines), min(smallest), max(largest) FROM (SELECT order_id,"
        " count(*) AS lines, min(quantity) AS smallest, max(quantity) AS largest"
        " FROM orders_orderitem GROUP BY order_id) AS per_order"
    )[0]
    assert most_lines <= 5
    assert smallest >= 1
    assert largest <= 5
    assert OrderItem.objects.count() > 300


def test_items_are_published_products_of_the_orders_merchant_at_their_price():
    seed()

    mismatched = rows(
        "SELECT i.id FROM orders_orderitem i"
        " JOIN orders_order o ON o.id = i.order_id JOIN catalog_product p ON p.id = i.product_id"
        " WHERE p.merchant_id <> o.merchant_id OR NOT p.is_published"
        " OR i.title <> p.title OR i.unit_price <> p.price"
    )
    assert mismatched == []
    # Shops and products vary: the orders are not all at one merchant or for one product.
    assert Order.objects.values("merchant").distinct().count() >= 4
    assert OrderItem.objects.values("product").distinct().count() > 50


def test_the_fee_is_the_cheapest_active_zone_covering_the_address_whose_minimum_is_met():
    seed()

    checked = rows(
        "SELECT o.id, o.delivery_fee, o.subtotal, zone.delivery_fee, zone.min_order_amount"
        " FROM orders_order o JOIN merchants_address a ON a.id = o.delivery_address_id"
        " LEFT JOIN LATERAL (SELECT z.delivery_fee, z.min_order_amount"
        "  FROM merchants_deliveryzone z WHERE z.merchant_id = o.merchant_id AND z.is_active"
        "  AND ST_Covers(z.area, a.location) ORDER BY z.delivery_fee, z.id LIMIT 1) zone ON true"
    )
    assert len(checked) == 300
    for order_id, fee, subtotal, zone_fee, minimum in checked:
        assert zone_fee is not None, f"order {order_id} is delivered outside every zone"
        assert fee == zone_fee, order_id
        assert subtotal >= minimum, order_id
    # Each order has an address of its own, not a merchant's.
    assert Order.objects.values("delivery_address").distinct().count() == 300
    assert not Order.objects.filter(
        delivery_address__in=Merchant.objects.values("address")
    ).exists()
    # Two-zone shops get orders in their dearer outer ring too.
    assert len({fee for _, fee, _, _, _ in checked}) > 2


def test_orders_fill_the_90_days_before_the_anchor_and_deliveries_take_15_to_90_minutes():
    seed()

    first, last_created, last_updated = rows(
        "SELECT min(created_at), max(created_at), max(updated_at) FROM orders_order"
    )[0]
    assert ANCHOR - timedelta(days=90) <= first < ANCHOR - timedelta(days=88)
    assert last_created < ANCHOR
    assert last_updated < ANCHOR
    assert not Order.objects.exclude(status="delivered").filter(delivered_at__isnull=False).exists()
    for created, delivered in Order.objects.filter(status="delivered").values_list(
        "created_at", "delivered_at"
    ):
        assert timedelta(minutes=15) <= delivered - created <= timedelta(minutes=90)
        assert delivered < ANCHOR
    # Analytics filter delivered orders by `delivered_at`: each month of the window has some.
    for months_back in range(3):
        end = ANCHOR - timedelta(days=30 * months_back)
        assert (
            Order.objects.filter(
                status="delivered", delivered_at__gte=end - timedelta(days=30), delivered_at__lt=end
            ).count()
            > 50
        )
    # In flight means just placed; everything older has settled.
    recent = ANCHOR - timedelta(minutes=90)
    assert not Order.objects.filter(status__in=IN_FLIGHT, created_at__lt=recent).exists()
    assert not Order.objects.exclude(status__in=IN_FLIGHT).filter(created_at__gte=recent).exists()
    # Ids follow time, as in production.
    assert (
        scalar(
            "SELECT count(*) FROM (SELECT created_at, lag(created_at) OVER (ORDER BY id) AS prev"
            " FROM orders_order) AS o WHERE created_at < prev"
        )
        == 0
    )


def test_more_orders_on_weekends_and_in_the_evening():
    seed(orders=3000, merchants=4, products_per_merchant=15)

    # Berlin's clock is UTC+1 (solar time): 19:00 UTC is 20:00 there.
    by_hour = dict(
        rows("SELECT extract(hour FROM created_at)::int, count(*) FROM orders_order GROUP BY 1")
    )
    assert by_hour.get(17, 0) + by_hour.get(18, 0) > 5 * (by_hour.get(2, 0) + by_hour.get(3, 0))
    by_day = dict(
        rows(
            "SELECT extract(isodow FROM created_at + interval '1 hour')::int, count(*)"
            " FROM orders_order GROUP BY 1"
        )
    )
    assert by_day[6] > 1.2 * by_day[2]


def test_each_orders_history_tells_its_story():
    seed()

    history = defaultdict(list)
    for order_id, from_status, to_status, reason, created_at in OrderStatusChange.objects.order_by(
        "order_id", "created_at", "id"
    ).values_list("order_id", "from_status", "to_status", "reason", "created_at"):
        history[order_id].append((from_status, to_status, reason, created_at))
    allowed = set(TRANSITIONS) | {("", "confirmed"), ("", "rejected")}
    orders = list(Order.objects.all())
    assert len(orders) == 300
    for order in orders:
        steps = history[order.pk]
        assert steps, order.pk
        assert steps[-1][1] == order.status, order.pk
        assert steps[0][0] == "", order.pk
        assert steps[0][3] == order.created_at, order.pk
        assert steps[-1][3] == order.updated_at, order.pk
        previous = ""
        for from_status, to_status, _, _ in steps:
            assert from_status == previous, order.pk
            assert (from_status, to_status) in allowed, (order.pk, from_status, to_status)
            previous = to_status
        times = [created_at for *_, created_at in steps]
        assert times == sorted(times), order.pk
        assert len(set(times)) == len(times), order.pk
        if order.status == "delivered":
            assert [to for _, to, _, _ in steps] == [
                "confirmed",
                "preparing",
                "ready",
                "picked_up",
                "delivered",
            ]
            assert order.delivered_at == steps[-1][3]
        reasons = {to: reason for _, to, reason, _ in steps if reason}
        if order.status == "cancelled":
            assert reasons.keys() == {"cancelled"}, f"cancelled order {order.pk} without a reason"
        elif order.status in ("failed", "returned"):
            # The courier's reason, as the contract's transition takes it, kept on the order.
            assert reasons.keys() == {"failed"}, order.pk
            assert reasons["failed"] in FailureReason.values
            assert order.failure_reason == reasons["failed"]
        else:
            assert reasons == {}, order.pk
            assert order.failure_reason == ""
    assert not OrderStatusChange.objects.filter(actor__isnull=False).exists()


def test_rejected_orders_name_their_shortages():
    seed()

    rejected = list(Order.objects.filter(status="rejected").prefetch_related("items", "history"))
    assert rejected
    for order in rejected:
        assert order.rejection_reason == "insufficient_stock"
        assert [change.to_status for change in order.history.all()] == ["rejected"]
        assert 1 <= len(order.shortages) <= 2
        quantities = {item.product_id: item.quantity for item in order.items.all()}
        for shortage in order.shortages:
            assert set(shortage) == {"product_id", "requested", "available"}
            assert shortage["requested"] == quantities[shortage["product_id"]]
            assert 0 <= shortage["available"] < shortage["requested"]
    others = Order.objects.exclude(status="rejected")
    assert not others.exclude(rejection_reason="").exists()
    assert not others.exclude(shortages=[]).exists()


def earlier_steps_snapshot() -> dict[str, list]:
    return {
        "inventory": list(
            Inventory.objects.order_by("product_id").values_list(
                "product__title", "quantity", "low_stock_threshold", "updated_at"
            )
        ),
        "products": list(
            Product.objects.order_by("id").values_list("title", "price", "is_published")
        ),
        "merchants": list(Merchant.objects.order_by("id").values_list("name", "is_active")),
        "zones": list(DeliveryZone.objects.order_by("id").values_list("name", "delivery_fee")),
        "users": list(
            User.objects.exclude(username__startswith="customer-")
            .order_by("id")
            .values_list("username", "first_name", "last_name", "date_joined")
        ),
    }


def rolled_back(snapshot, **options):
    with transaction.atomic():
        seed(**options)
        data = snapshot()
        transaction.set_rollback(True)
    return data


def test_orders_change_no_stock_and_nothing_the_earlier_steps_wrote():
    without = rolled_back(earlier_steps_snapshot, orders=0)
    with_orders = rolled_back(earlier_steps_snapshot, orders=300)

    assert without["inventory"]
    assert without == with_orders


def orders_snapshot(anchor: datetime = ANCHOR) -> list[tuple]:
    """Every order with its address, items and history, times relative to the anchor."""
    items = defaultdict(list)
    for order_id, title, price, quantity, total in OrderItem.objects.order_by(
        "order_id", "id"
    ).values_list("order_id", "title", "unit_price", "quantity", "line_total"):
        items[order_id].append((title, price, quantity, total))
    history = defaultdict(list)
    for order_id, to_status, reason, created_at in OrderStatusChange.objects.order_by(
        "order_id", "id"
    ).values_list("order_id", "to_status", "reason", "created_at"):
        history[order_id].append((to_status, reason, created_at - anchor))
    return [
        (
            order.status,
            order.subtotal,
            order.delivery_fee,
            order.total,
            order.shortages and [s["requested"] - s["available"] for s in order.shortages],
            order.created_at - anchor,
            order.updated_at - anchor,
            order.delivered_at and order.delivered_at - anchor,
            order.buyer.username,
            order.merchant.name,
            order.delivery_address.line1,
            order.delivery_address.location.coords,
            items[order.pk],
            history[order.pk],
        )
        for order in Order.objects.select_related("buyer", "merchant", "delivery_address")
        .order_by("id")
        .iterator()
    ]


def test_the_same_seed_and_anchor_give_the_same_orders():
    first = rolled_back(orders_snapshot)
    second = rolled_back(orders_snapshot)

    assert len(first) == 300
    assert first == second


def test_orders_are_placed_relative_to_the_anchor():
    week_later = ANCHOR + timedelta(days=7)

    first = rolled_back(orders_snapshot)
    later = rolled_back(
        lambda: orders_snapshot(anchor=week_later), orders_until=week_later.isoformat()
    )

    assert first == later


def test_another_seed_gives_other_orders():
    first = rolled_back(orders_snapshot)
    other = rolled_back(orders_snapshot, seed=6)

    assert first != other


def test_the_number_of_queries_does_not_grow_with_the_orders():
    def queries(**options) -> list[str]:
        with transaction.atomic(), CaptureQueriesContext(connection) as captured:
            seed(**options)
            transaction.set_rollback(True)
        return [query["sql"] for query in captured.captured_queries]

    few = queries(orders=40)
    many = queries(orders=1500)

    assert len(few) == len(many)
    copies = [sql for sql in many if sql.startswith("COPY ")]
    for table in ("orders_order", "orders_orderitem", "orders_orderstatuschange"):
        assert sum(f'"{table}"' in sql for sql in copies) == 1, table


def test_bulk_customers_place_the_orders_and_cannot_log_in():
    seed()

    customers = User.objects.filter(username__startswith="customer-")
    assert customers.count() == 30
    assert not any(customer.has_usable_password() for customer in customers)
    assert not Token.objects.filter(user__in=customers).exists()
    buyers = set(Order.objects.values_list("buyer__username", flat=True))
    assert len(buyers) > 15
    assert buyers <= {c.username for c in customers} | {"demo-customer"}


def test_the_demo_accounts_have_orders_in_flight():
    seed()

    owner_merchant = Merchant.objects.get(owner__username="demo-owner")
    assert Order.objects.filter(buyer__username="demo-customer").count() > 5
    assert Order.objects.filter(
        buyer__username="demo-customer", merchant=owner_merchant, status__in=IN_FLIGHT
    ).exists()
    assert Order.objects.filter(merchant=owner_merchant, status__in=IN_FLIGHT).count() >= 2


def test_no_orders_is_no_orders_and_no_customers():
    seed(orders=0)

    assert not Order.objects.exists()
    assert not User.objects.filter(username__startswith="customer-").exists()
    assert Product.objects.count() == 150


def test_a_city_with_nothing_for_sale_gets_no_orders():
    out, _ = seed(products_per_merchant=0)

    assert not Order.objects.exists()
    assert "Seeded" in out


def test_the_foreign_keys_are_all_back_and_hold():
    def foreign_keys() -> list[tuple]:
        return rows(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2"
        )

    before = foreign_keys()
    seed()

    assert foreign_keys() == before
    assert any(table == "orders_orderitem" for table, _, _ in before)
    # Deferred until commit, which a test never reaches: check every row now.
    connection.check_constraints()


def test_a_clashing_customer_name_is_refused_and_nothing_is_written():
    User.objects.create_user(username="customer-000007", password="x-Secret-123")

    with pytest.raises(CommandError, match="customer-000007"):
        seed()

    assert not Merchant.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "options",
    [
        {"orders": -1},
        {"orders": 10_000_001},
        {"orders_until": "soon"},
        {"orders_until": "2025-08-01"},
    ],
)
def test_invalid_order_options_are_refused(options):
    with pytest.raises(CommandError):
        seed(**options)

    assert not Merchant.objects.exists()


def test_the_summary_names_the_anchor_and_progress_covers_the_orders():
    out, err = seed()

    assert "300 orders" in out
    assert "2026-03-14T18:30:00Z" in out
    assert any(line.startswith("orders ") and "100%" in line for line in err.splitlines())


def test_an_anchor_with_an_offset_is_the_same_instant():
    first = rolled_back(orders_snapshot)
    same_instant = rolled_back(orders_snapshot, orders_until="2026-03-14T19:30:00+01:00")

    assert first == same_instant
