"""Every path that locks several inventory rows takes them in id order.

Each check holds the lowest-id row from a connection of its own, starts the path in a
thread, waits until PostgreSQL shows it blocked behind that row, and then asks which of
the other rows it already holds (`FOR UPDATE SKIP LOCKED` skips them). A path that locks
in id order holds none of them while it waits for the first. The stock rows are made in
the reverse order of their products and lie in the table in the reverse order of their
ids, and an order's lines follow the products, so neither the order of the lines, nor
that of the products, nor that of a scan of the table passes for id order.
"""

import time

import psycopg
import pytest
from django.contrib.gis.geos import Point
from django.test import Client

from geomarket.sql import own_connection_params
from inventory.models import Inventory
from merchants.services import merchant_delete
from orders.models import OrderStatus
from orders.services import OrderLine, order_place, order_transition
from tests import factories
from tests.threads import TIMEOUT_SECONDS, Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop():
    merchant = factories.merchant()
    factories.zone(merchant=merchant, min_order="0.00")
    return merchant


def products_made(shop, count: int, *, stock_reversed: bool = True) -> list[int]:
    """Products whose stock rows' ids run opposite to the products' ids (unless
    `stock_reversed` is false) and to the rows' places in the table."""
    made = [factories.product(merchant=shop, price="1.00") for _ in range(count)]
    for product in reversed(made) if stock_reversed else made:
        factories.stock(product=product, quantity=100)
    ids = [product.pk for product in made]
    stock_ids = [Inventory.objects.get(product_id=p).pk for p in ids]
    assert stock_ids == sorted(stock_ids, reverse=stock_reversed)
    # An updated row's new version goes after the others: highest id first, so a scan
    # of the table meets them from the highest id down.
    for stock_id in stock_ids:
        Inventory.objects.filter(pk=stock_id).update(quantity=100)
    return ids


@pytest.fixture
def products(shop) -> list[int]:
    return products_made(shop, 4)


def place(shop, product_ids: list[int]):
    return order_place(
        buyer=factories.user(),
        merchant_id=shop.pk,
        lines=[OrderLine(product_id, 1) for product_id in product_ids],
        delivery_address={
            "line1": "A",
            "city": "Berlin",
            "postal_code": "10115",
            "location": Point(shop.location.x, shop.location.y, srid=4326),
        },
    )


def waiting_behind(worker: Worker, blocker_pid: int, observer) -> None:
    """Return once `worker` waits for a lock the session `blocker_pid` holds."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not observer.execute(
        "SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
        [blocker_pid],
    ).fetchone():
        assert worker.is_alive(), worker.outcome()
        assert time.monotonic() < deadline, "the path never waited for the first row"
        time.sleep(0.01)


def rows_held_while_waiting_for_the_first(path, product_ids: list[int]):
    """The stock rows of `product_ids` other than the lowest-id one that `path` holds
    while it waits for that one; then let it finish and return what it returned."""
    stock_ids = sorted(
        Inventory.objects.filter(product_id__in=product_ids).values_list("pk", flat=True)
    )
    assert len(stock_ids) == len(product_ids) > 1
    params = own_connection_params()
    with (
        psycopg.connect(**params) as blocker,
        psycopg.connect(**params, autocommit=True) as observer,
    ):
        blocker.execute(
            "SELECT 1 FROM inventory_inventory WHERE id = %s FOR UPDATE", [stock_ids[0]]
        )
        # Asked of the server: through a pooler, the connection's own backend pid is the
        # pooler's stand-in, not the server session holding the row.
        blocker_pid = blocker.execute("SELECT pg_backend_pid()").fetchone()[0]
        worker = Worker(path)
        worker.start()
        try:
            waiting_behind(worker, blocker_pid, observer)
            with observer.transaction():
                free = {
                    row_id
                    for (row_id,) in observer.execute(
                        "SELECT id FROM inventory_inventory WHERE id = ANY(%s)"
                        " FOR UPDATE SKIP LOCKED",
                        [stock_ids[1:]],
                    )
                }
        finally:
            blocker.rollback()
        result = worker.outcome()
    return set(stock_ids[1:]) - free, result


def test_a_cancel_takes_its_stock_rows_in_id_order(shop, products):
    order = place(shop, products)
    held, cancelled = rows_held_while_waiting_for_the_first(
        lambda: order_transition(
            order_id=order.pk, actor=order.buyer, to_status=OrderStatus.CANCELLED
        ),
        products,
    )
    assert held == set()
    assert cancelled.status == OrderStatus.CANCELLED
    assert set(
        Inventory.objects.filter(product_id__in=products).values_list("quantity", flat=True)
    ) == {100}


def test_an_order_takes_its_stock_rows_in_id_order(shop, products):
    held, placed = rows_held_while_waiting_for_the_first(lambda: place(shop, products), products)
    assert held == set()
    assert placed.status == OrderStatus.CONFIRMED
    assert set(
        Inventory.objects.filter(product_id__in=products).values_list("quantity", flat=True)
    ) == {99}


def placed_behind_a_committed_write(
    shop, product_ids: list[int], *, quantity: int, before: int | None = None
):
    """An order for one of each product, placed while another transaction sets the stock
    of the lowest-id row to `quantity` (from `before`, when given), and committed once the
    order waits for that row. Returns the order and that row's product."""
    first = Inventory.objects.filter(product_id__in=product_ids).order_by("pk").first()
    if before is not None:
        Inventory.objects.filter(pk=first.pk).update(quantity=before)
    params = own_connection_params()
    with (
        psycopg.connect(**params) as writer,
        psycopg.connect(**params, autocommit=True) as observer,
    ):
        writer.execute(
            "UPDATE inventory_inventory SET quantity = %s WHERE id = %s", [quantity, first.pk]
        )
        writer_pid = writer.execute("SELECT pg_backend_pid()").fetchone()[0]
        worker = Worker(lambda: place(shop, product_ids))
        worker.start()
        try:
            waiting_behind(worker, writer_pid, observer)
        finally:
            writer.commit()
        return worker.outcome(), first.product_id


def stock(product_ids: list[int]) -> dict[int, int]:
    return dict(
        Inventory.objects.filter(product_id__in=product_ids).values_list("product_id", "quantity")
    )


def test_an_order_waiting_for_a_row_sold_out_meanwhile_is_short_and_takes_nothing(shop, products):
    """The stock an order checks is what the write it waited for committed, not what the
    order's statement saw when it began."""
    placed, sold_out = placed_behind_a_committed_write(shop, products, quantity=0)
    assert placed.status == OrderStatus.REJECTED
    assert placed.shortages == [{"product_id": sold_out, "requested": 1, "available": 0}]
    assert stock(products) == {p: 0 if p == sold_out else 100 for p in products}


def test_an_order_waiting_for_a_row_takes_from_the_stock_committed_meanwhile(shop, products):
    placed, changed = placed_behind_a_committed_write(shop, products, quantity=50)
    assert placed.status == OrderStatus.CONFIRMED
    assert stock(products) == {p: 49 if p == changed else 99 for p in products}


def test_an_order_waiting_for_a_row_restocked_meanwhile_takes_from_the_restock(shop, products):
    """Sold out when the order's statement began, restocked by the write it waited for: the
    order is confirmed. PostgreSQL checks a row's constraints on the version the statement
    began with before it rechecks the row the write committed, so a new quantity computed
    from that version (0 - 1) broke the non-negative check: a 409 for a good order."""
    placed, restocked = placed_behind_a_committed_write(shop, products, quantity=50, before=0)
    assert placed.status == OrderStatus.CONFIRMED
    assert stock(products) == {p: 49 if p == restocked else 99 for p in products}


def test_deleting_a_merchant_takes_its_stock_rows_in_id_order(shop):
    # More rows than Django deletes in one statement (100), whose batches follow the
    # order the rows were collected in, not their ids.
    products = products_made(shop, 120)
    held, _ = rows_held_while_waiting_for_the_first(
        lambda: merchant_delete(merchant=shop), products
    )
    assert held == set()
    assert not Inventory.objects.filter(product_id__in=products).exists()


def admin_bulk_delete(changelist: str, ids: list[int]):
    """The admin's "delete selected" action on `ids`, as an operator, in the calling thread."""
    operator = factories.user(is_staff=True)
    operator.is_superuser = True
    operator.save()

    def delete():
        client = Client()
        client.force_login(operator)
        response = client.post(
            changelist,
            {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
        )
        assert response.status_code == 302, response.content
        return response

    return delete


def test_the_admins_bulk_delete_of_stock_rows_takes_them_in_id_order(shop, products):
    stock_ids = list(Inventory.objects.filter(product_id__in=products).values_list("pk", flat=True))
    held, _ = rows_held_while_waiting_for_the_first(
        admin_bulk_delete("/admin/inventory/inventory/", stock_ids), products
    )
    assert held == set()
    assert not Inventory.objects.filter(product_id__in=products).exists()


def test_the_admins_bulk_delete_of_products_takes_their_stock_rows_in_id_order(shop):
    # The admin deletes the newest product first; here its stock row is the newest too.
    products = products_made(shop, 4, stock_reversed=False)
    held, _ = rows_held_while_waiting_for_the_first(
        admin_bulk_delete("/admin/catalog/product/", products), products
    )
    assert held == set()
    assert not Inventory.objects.filter(product_id__in=products).exists()


def test_the_admins_bulk_delete_of_merchants_takes_their_stock_rows_in_id_order(shop):
    # The admin deletes the newest merchant first, whose stock rows are the newest too.
    other = factories.merchant()
    products = products_made(shop, 3) + products_made(other, 3)
    held, _ = rows_held_while_waiting_for_the_first(
        admin_bulk_delete("/admin/merchants/merchant/", [shop.pk, other.pk]), products
    )
    assert held == set()
    assert not Inventory.objects.filter(product_id__in=products).exists()
