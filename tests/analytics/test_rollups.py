"""The reports read daily rollups kept by the deliveries and failures themselves; on
random histories made through the real services they equal, to the cent, the reports
computed from the raw orders."""

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from analytics.models import MerchantDay, MerchantTotal, PlatformDay, ProductDay
from analytics.selectors import INTERVALS, DateRange, merchants_report, revenue_report, top_products
from analytics.services import rollups_rebuild
from inventory.models import Inventory
from orders.models import FailureReason, Order, OrderItem, OrderStatus, OrderStatusChange
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.analytics.test_reports import expected_merchants, expected_revenue, expected_top

pytestmark = pytest.mark.django_db

DAY0 = date(2026, 6, 1)
WINDOW_DAYS = 12
TO_DELIVERED = (
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.PICKED_UP,
    OrderStatus.DELIVERED,
)
TO_FAILED = (*TO_DELIVERED[:-1], OrderStatus.FAILED)
# The steps dated by the history's clock: a delivery or failure, a return after it.
OUTCOMES = (OrderStatus.DELIVERED, OrderStatus.FAILED)


@pytest.fixture
def clock(monkeypatch):
    """`timezone.now()` as the test sets it: placement stamps `created_at` and the
    delivery `delivered_at` with it."""
    now = [datetime.combine(DAY0, time(12), tzinfo=UTC)]
    monkeypatch.setattr(timezone, "now", lambda: now[0])
    return now


def _moment(rng: random.Random) -> datetime:
    """A moment of the window, often a few seconds either side of a UTC midnight."""
    day = datetime.combine(DAY0 + timedelta(days=rng.randrange(WINDOW_DAYS)), time.min, tzinfo=UTC)
    if rng.random() < 0.3:
        return day + timedelta(seconds=rng.choice([-2, -1, 0, 1]), microseconds=rng.randrange(10))
    return day + timedelta(seconds=rng.randrange(86400), microseconds=rng.randrange(10**6))


def _random_history(rng: random.Random, clock: list[datetime]) -> list[tuple[int, date]]:
    """Shops selling a few products each, and orders placed and moved through their
    states by the services: delivered or failed within minutes or late (days after they
    were placed, across UTC midnights), some failed ones returned later, cancelled,
    rejected for want of stock, or left in flight; deliveries and failures come in no
    particular order of day. Returns the (merchant, UTC day) of each delivery and
    failure, in the order they were made."""
    deliveries = []
    operator = factories.user(is_staff=True)
    buyers = [factories.user() for _ in range(3)]
    shops = []
    for _ in range(rng.randint(2, 4)):
        shop = factories.merchant()
        factories.zone(merchant=shop, min_order="0")
        products = []
        for _ in range(rng.randint(2, 5)):
            product = factories.product(merchant=shop, price=f"{rng.randint(1, 5000) / 100:.2f}")
            # A few products run out: their orders are rejected.
            factories.stock(product=product, quantity=rng.choice([3, 10_000, 10_000]))
            products.append(product)
        shops.append((shop, products))
    pending = []
    for _ in range(rng.randint(25, 45)):
        shop, products = rng.choice(shops)
        clock[0] = _moment(rng)
        order = order_place(
            buyer=rng.choice(buyers),
            merchant_id=shop.pk,
            lines=[
                OrderLine(product.pk, rng.randint(1, 4))
                for product in rng.sample(products, rng.randint(1, len(products)))
            ],
            delivery_address=factories.delivery_address(near=shop),
        )
        if order.status == OrderStatus.CONFIRMED:
            pending.append((order, clock[0]))
    rng.shuffle(pending)
    # Every history has an order left failed and one returned: the first two.
    forced = [[*TO_FAILED], [*TO_FAILED, OrderStatus.RETURNED]]
    for order, created in pending:
        fate = rng.random()
        if forced:
            steps = forced.pop()
        elif fate < 0.15:
            steps = [*rng.choice([[], [OrderStatus.PREPARING]]), OrderStatus.CANCELLED]
        elif fate < 0.25:
            steps = list(TO_DELIVERED[: rng.randint(0, 3)])
        elif fate < 0.4:
            steps = [*TO_FAILED, *rng.choice([[], [OrderStatus.RETURNED]])]
        else:
            steps = list(TO_DELIVERED)
        for step in steps:
            reason = ""
            if step in OUTCOMES:
                late = rng.random() < 0.3
                clock[0] = created + timedelta(
                    minutes=rng.randint(0, 4 * 24 * 60) if late else rng.randint(1, 120),
                    seconds=rng.randrange(60),
                    microseconds=rng.randrange(10**6),
                )
                deliveries.append((order.merchant_id, clock[0].astimezone(UTC).date()))
            if step == OrderStatus.FAILED:
                reason = rng.choice(FailureReason.values)
            if step == OrderStatus.RETURNED:
                # Often on a later day than the failure, which it does not move.
                clock[0] += timedelta(hours=rng.randint(1, 30))
            order_transition(order_id=order.pk, actor=operator, to_status=step, reason=reason)
    return deliveries


def _raw_history() -> dict:
    """The orders as the reports' reference reads them, straight from their rows."""
    items = {}
    for item in OrderItem.objects.select_related("product"):
        item.product.price = item.unit_price
        items.setdefault(item.order_id, []).append((item.product, item.quantity))
    failed_at = dict(
        OrderStatusChange.objects.filter(to_status=OrderStatus.FAILED).values_list(
            "order_id", "created_at"
        )
    )
    orders = [
        SimpleNamespace(
            status=o.status,
            merchant_id=o.merchant_id,
            total=o.total,
            created_at=o.created_at,
            delivered_at=o.delivered_at,
            failed_at=failed_at.get(o.pk),
            chosen=items.get(o.pk, []),
        )
        for o in Order.objects.all()
    ]
    return {"orders": orders}


def _ranges(rng: random.Random) -> list[tuple[date, date]]:
    last = DAY0 + timedelta(days=WINDOW_DAYS + 5)
    ranges = [(DAY0 - timedelta(days=3), last), (DAY0, DAY0), (last, last)]
    for _ in range(4):
        start = DAY0 + timedelta(days=rng.randint(-2, WINDOW_DAYS + 3))
        ranges.append((start, start + timedelta(days=rng.randint(0, 20))))
    return ranges


def _assert_reports_match(history: dict, rng: random.Random) -> None:
    merchant_ids = sorted({o.merchant_id for o in history["orders"]})
    for date_from, date_to in _ranges(rng):
        range_ = DateRange(date_from, date_to)
        rows = merchants_report(range_=range_)
        for row in rows:
            row.pop("name")
        assert rows == expected_merchants(history, date_from, date_to), range_
        for merchant_id in [None, *merchant_ids]:
            for interval in INTERVALS:
                assert revenue_report(
                    range_=range_, interval=interval, merchant_id=merchant_id
                ) == expected_revenue(history, date_from, date_to, interval, merchant_id), (
                    range_,
                    interval,
                    merchant_id,
                )
            for top in (1, 2, 100):
                rows = top_products(range_=range_, merchant_id=merchant_id, top=top)
                trimmed = [
                    {
                        k: r[k]
                        for k in ("merchant_id", "product_id", "units_sold", "revenue", "rank")
                    }
                    for r in rows
                ]
                assert trimmed == expected_top(history, date_from, date_to, top, merchant_id), (
                    range_,
                    top,
                    merchant_id,
                )


def _rollups() -> tuple[list, list, list, list]:
    return (
        sorted(
            MerchantDay.objects.values_list(
                "merchant_id",
                "day",
                "orders",
                "revenue",
                "failed",
                "orders_to_date",
                "revenue_to_date",
                "failed_to_date",
            )
        ),
        sorted(PlatformDay.objects.values_list("day", "shard", "orders", "revenue")),
        sorted(
            ProductDay.objects.values_list("merchant_id", "product_id", "day", "units", "revenue")
        ),
        sorted(
            MerchantTotal.objects.values_list(
                "merchant_id",
                "day",
                "orders_to_date",
                "revenue_to_date",
                "delivery_time_to_date",
                "failed_to_date",
            )
        ),
    )


# The merchant days whose running totals are not the sums of the merchant's days up to
# them. Compared as text: PostgreSQL's interval equality takes a day for 24 hours, and
# the report's averages divide the days and the microseconds apart.
WRONG_RUNNING_TOTALS_SQL = """
SELECT merchant_id, day
FROM (
    SELECT merchant_id, day, orders_to_date, revenue_to_date, delivery_time_to_date,
           failed_to_date,
           sum(orders) OVER w AS orders_sum, sum(revenue) OVER w AS revenue_sum,
           sum(delivery_time) OVER w AS delivery_time_sum, sum(failed) OVER w AS failed_sum
    FROM analytics_merchantday
    WINDOW w AS (PARTITION BY merchant_id ORDER BY day)
) d
WHERE orders_to_date <> orders_sum
   OR revenue_to_date::text <> revenue_sum::text
   OR delivery_time_to_date::text <> delivery_time_sum::text
   OR failed_to_date <> failed_sum
"""


# The merchants whose latest totals (`MerchantTotal`) are not those of their last day,
# or who have the one without the other.
WRONG_LATEST_TOTALS_SQL = """
SELECT coalesce(t.merchant_id, d.merchant_id)
FROM analytics_merchanttotal t
FULL JOIN (
    SELECT DISTINCT ON (merchant_id) *
    FROM analytics_merchantday
    ORDER BY merchant_id, day DESC
) d ON d.merchant_id = t.merchant_id
WHERE t.merchant_id IS NULL OR d.merchant_id IS NULL
   OR (t.day, t.orders_to_date, t.revenue_to_date::text, t.delivery_time_to_date::text,
       t.failed_to_date)
      <> (d.day, d.orders_to_date, d.revenue_to_date::text, d.delivery_time_to_date::text,
          d.failed_to_date)
"""


def wrong_running_totals() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(WRONG_RUNNING_TOTALS_SQL)
        wrong = cursor.fetchall()
        cursor.execute(WRONG_LATEST_TOTALS_SQL)
        return wrong + cursor.fetchall()


@pytest.mark.parametrize("seed", range(4))
def test_running_and_latest_totals_are_the_sums_of_the_merchants_days_so_far(clock, seed):
    rng = random.Random(100 + seed)
    seen: dict[int, date] = {}
    dated_back = 0
    for merchant_id, day in _random_history(rng, clock):
        # Delivered on a day before the merchant's last: its later days take it in.
        dated_back += day < seen.get(merchant_id, day)
        seen[merchant_id] = max(day, seen.get(merchant_id, day))
    assert dated_back
    assert MerchantDay.objects.count() > len(seen)
    assert wrong_running_totals() == []
    rollups_rebuild(since=DAY0 + timedelta(days=WINDOW_DAYS // 2))
    assert wrong_running_totals() == []
    rollups_rebuild()
    assert wrong_running_totals() == []


@pytest.mark.parametrize("seed", range(4))
def test_reports_on_random_histories_equal_the_raw_orders_reports(clock, seed):
    rng = random.Random(seed)
    _random_history(rng, clock)
    history = _raw_history()
    delivered = [o for o in history["orders"] if o.status == OrderStatus.DELIVERED]
    assert delivered
    assert any(o.delivered_at.date() != o.created_at.date() for o in delivered)
    assert any(o.status != OrderStatus.DELIVERED for o in history["orders"])
    statuses = {o.status for o in history["orders"] if o.failed_at}
    assert statuses == {OrderStatus.FAILED, OrderStatus.RETURNED}
    _assert_reports_match(history, rng)
    # The deliveries kept exactly what a rebuild from the orders makes.
    kept = _rollups()
    rollups_rebuild()
    assert _rollups() == kept
    rollups_rebuild(since=DAY0 + timedelta(days=WINDOW_DAYS // 2))
    assert _rollups() == kept


def shop_selling(*, price: str) -> SimpleNamespace:
    """A shop delivering anywhere near it, one product in stock, an operator to move
    its orders and an address to deliver them to."""
    shop = factories.merchant()
    factories.zone(merchant=shop, min_order="0")
    product = factories.product(merchant=shop, price=price)
    factories.stock(product=product, quantity=1000)
    return SimpleNamespace(
        shop=shop,
        product=product,
        operator=factories.user(is_staff=True),
        address=factories.delivery_address(near=shop),
    )


def ordered(selling, *steps: str, quantity: int = 1) -> Order:
    """An order of `quantity` of `selling`'s product, taken through `steps` by its
    operator (a failure for a customer not there)."""
    order = order_place(
        buyer=factories.user(),
        merchant_id=selling.shop.pk,
        lines=[OrderLine(selling.product.pk, quantity)],
        delivery_address=selling.address,
    )
    for step in steps:
        order_transition(
            order_id=order.pk,
            actor=selling.operator,
            to_status=step,
            reason="customer_absent" if step == OrderStatus.FAILED else "",
        )
    return Order.objects.get(pk=order.pk)


def test_only_a_delivery_adds_to_the_rollups(clock):
    selling = shop_selling(price="4.10")
    shop, product, operator = selling.shop, selling.product, selling.operator
    address = selling.address
    kept, cancelled = (
        order_place(
            buyer=factories.user(),
            merchant_id=shop.pk,
            lines=[OrderLine(product.pk, 2)],
            delivery_address=address,
        )
        for _ in range(2)
    )
    order_transition(order_id=cancelled.pk, actor=operator, to_status=OrderStatus.CANCELLED)
    for step in TO_DELIVERED[:-1]:
        order_transition(order_id=kept.pk, actor=operator, to_status=step)
    assert _rollups() == ([], [], [], [])
    clock[0] = datetime(2026, 6, 3, 23, 59, 59, 999_999, tzinfo=UTC)
    order_transition(order_id=kept.pk, actor=operator, to_status=OrderStatus.DELIVERED)
    delivered = Order.objects.get(pk=kept.pk)
    assert _rollups() == (
        [(shop.pk, date(2026, 6, 3), 1, kept.total, 0, 1, kept.total, 0)],
        [(date(2026, 6, 3), shop.pk % PlatformDay.SHARDS, 1, kept.total)],
        [(shop.pk, product.pk, date(2026, 6, 3), 2, product.price * 2)],
        [
            (
                shop.pk,
                date(2026, 6, 3),
                1,
                kept.total,
                delivered.delivered_at - delivered.created_at,
                0,
            )
        ],
    )


def test_a_failure_counts_on_its_day_in_the_merchants_days_only_and_its_return_adds_nothing(
    clock,
):
    selling = shop_selling(price="2.75")
    shop, operator = selling.shop, selling.operator
    order = order_place(
        buyer=factories.user(),
        merchant_id=shop.pk,
        lines=[OrderLine(selling.product.pk, 1)],
        delivery_address=selling.address,
    )
    for step in TO_FAILED[:-1]:
        order_transition(order_id=order.pk, actor=operator, to_status=step)
    assert _rollups() == ([], [], [], [])
    clock[0] = datetime(2026, 6, 4, 23, 59, 59, 999_999, tzinfo=UTC)
    order_transition(
        order_id=order.pk, actor=operator, to_status=OrderStatus.FAILED, reason="refused"
    )
    failed = (
        [(shop.pk, date(2026, 6, 4), 0, 0, 1, 0, 0, 1)],
        [],
        [],
        [(shop.pk, date(2026, 6, 4), 0, 0, timedelta(0), 1)],
    )
    assert _rollups() == failed
    clock[0] += timedelta(microseconds=1)
    order_transition(order_id=order.pk, actor=operator, to_status=OrderStatus.RETURNED)
    assert _rollups() == failed


def test_a_rebuild_reads_the_orders_statistics_and_leaves_the_planner_as_it_was():
    """The rebuild follows bulk writes the planner has no statistics of (the seeding's),
    so it gathers them first; its statement is planned without nested loops or
    sequential scans, which rescanned the rollups for every day added, and the caller's
    transaction goes on with the planner as it was."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (started,) = cursor.fetchone()
    rollups_rebuild()
    with connection.cursor() as cursor:
        for setting in ("enable_nestloop", "enable_seqscan"):
            cursor.execute(f"SHOW {setting}")
            assert cursor.fetchone() == ("on",)
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze >= %s ORDER BY 1",
            [started],
        )
        analyzed = {name for (name,) in cursor.fetchall()}
    assert {
        Order._meta.db_table,
        OrderItem._meta.db_table,
        OrderStatusChange._meta.db_table,
    } <= analyzed


def test_a_day_of_the_largest_orders_is_summed_to_the_cent(clock):
    # 102 orders of 99 units at the largest price: each fits its own columns, and their
    # day passes 10^12, what a day's sum held before.
    selling = shop_selling(price="99999999.99")
    Inventory.objects.filter(product=selling.product).update(quantity=102 * 99)
    clock[0] = datetime(2026, 6, 3, 12, tzinfo=UTC)
    orders = [ordered(selling, *TO_DELIVERED, quantity=99) for _ in range(102)]
    revenue = sum(order.total for order in orders)
    assert revenue > Decimal("999999999999.99")
    day = MerchantDay.objects.get(merchant_id=selling.shop.pk)
    assert (day.orders, day.revenue, day.revenue_to_date) == (102, revenue, revenue)
    assert ProductDay.objects.get(product_id=selling.product.pk).revenue == sum(
        order.subtotal for order in orders
    )
    (row,) = merchants_report(range_=DateRange(date(2026, 6, 3), date(2026, 6, 3)))
    assert (row["merchant_id"], row["orders"], row["revenue"]) == (
        selling.shop.pk,
        102,
        f"{revenue}",
    )
