import functools
from collections.abc import Sequence
from typing import Protocol

from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Now
from django.utils import timezone

from catalog.models import Product
from events.models import EventType
from events.services import EVENT_INSERT_SQL, event_record
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import Conflict, DomainError
from geomarket.locks import session_lock
from geomarket.services import model_update, unique_claim
from inventory.locks import inventory_lock_for_update, inventory_rows_lock_sql
from inventory.models import (
    LOW_STOCK,
    MAX_QUANTITY,
    Inventory,
    InventoryAdjustment,
    LowStockReport,
)


class StockUnderflow(Conflict):
    code = "stock_underflow"
    default_message = "The adjustment would take the stock below zero; nothing was changed."


class StockOverflow(Conflict):
    code = "stock_overflow"
    default_message = (
        f"The adjustment would take the stock above {MAX_QUANTITY:,}; nothing was changed."
    )


class InventoryExists(DomainError):
    code = "inventory_exists"
    default_message = "This product already has an inventory row."


@transaction.atomic
def inventory_create(*, product: Product, quantity: int, low_stock_threshold: int = 5) -> Inventory:
    """Create the product's stock row; a product that has one already is a 400, whether it
    was there before or a concurrent create committed it first (`unique_claim`)."""
    versions_bump(Namespace.CATALOG)
    taken = Inventory.objects.filter(product=product).exists
    if taken():
        raise InventoryExists(field="product_id")
    with unique_claim(taken=taken, refusal=InventoryExists(field="product_id")):
        return Inventory.objects.create(
            merchant_id=product.merchant_id,
            product=product,
            quantity=quantity,
            low_stock_threshold=low_stock_threshold,
        )


def _low_stock_data(*, product_id: int, quantity: int, low_stock_threshold: int) -> dict:
    return {
        "product_id": product_id,
        "quantity": quantity,
        "low_stock_threshold": low_stock_threshold,
    }


def _low_stock_check(*, inventory: Inventory, before: int) -> None:
    """Record `inventory.low_stock` when the stock has just fallen to its threshold or
    below (not on every change while it stays there)."""
    if inventory.quantity <= inventory.low_stock_threshold < before:
        event_record(
            type=EventType.INVENTORY_LOW_STOCK,
            merchant_id=inventory.merchant_id,
            data=_low_stock_data(
                product_id=inventory.product_id,
                quantity=inventory.quantity,
                low_stock_threshold=inventory.low_stock_threshold,
            ),
        )


# The low-stock events of a stock take, in its statement: `taken` is the UPDATE's
# RETURNING, each row's stock after the take and how much was taken.
_LOW_STOCK_EVENTS_SQL = f"""
low_stock AS (
    {EVENT_INSERT_SQL}
    SELECT '{EventType.INVENTORY_LOW_STOCK.value}', now(), merchant_id, NULL,
           jsonb_build_object('product_id', product_id, 'quantity', quantity,
                              'low_stock_threshold', low_stock_threshold)
    FROM taken
    WHERE quantity <= low_stock_threshold AND quantity + taken > low_stock_threshold
)"""  # noqa: S608 - only fixed fragments are interpolated


@transaction.atomic
def inventory_update(*, inventory: Inventory, data: dict) -> Inventory:
    versions_bump(Namespace.CATALOG)
    # The row as it is now, locked: the low-stock check and the answer start from the
    # stock an order or a cancellation may have changed since the caller read it.
    inventory.refresh_from_db(from_queryset=Inventory.objects.select_for_update())
    before = inventory.quantity
    inventory = model_update(instance=inventory, data=data)
    _low_stock_check(inventory=inventory, before=before)
    return inventory


@transaction.atomic
def inventory_delete(*, inventory: Inventory) -> None:
    versions_bump(Namespace.CATALOG)
    inventory.delete()


@transaction.atomic
def inventory_adjust(*, inventory_id: int, delta: int, reason: str = "", actor=None) -> Inventory:
    """Change the stock by `delta` in one conditional UPDATE.

    The condition on the result (no less than zero when taking, no more than
    `MAX_QUANTITY` when adding) and the row lock the UPDATE takes make concurrent
    adjustments serialise; a result past it updates no row and raises 409.
    """
    versions_bump(Namespace.CATALOG)
    within = {"quantity__gte": -delta} if delta < 0 else {"quantity__lte": MAX_QUANTITY - delta}
    updated = Inventory.objects.filter(pk=inventory_id, **within).update(
        quantity=F("quantity") + delta, updated_at=Now()
    )
    if not updated:
        if not Inventory.objects.filter(pk=inventory_id).exists():
            raise Inventory.DoesNotExist
        raise StockUnderflow() if delta < 0 else StockOverflow()
    inventory = Inventory.objects.get(pk=inventory_id)
    _low_stock_check(inventory=inventory, before=inventory.quantity - delta)
    InventoryAdjustment.objects.create(
        inventory=inventory,
        delta=delta,
        quantity_after=inventory.quantity,
        reason=reason,
        actor=actor,
    )
    return inventory


class StockLine(Protocol):
    """A product and how many of it, as an order's line gives them."""

    product_id: int
    quantity: int


def stock_take(*, lines: Sequence[StockLine]) -> list[dict]:
    """Take the stock for every line, or none of it; return the shortages, each
    `{product_id, requested, available}`, or none when the stock was taken.

    It runs in the caller's transaction. A single line is taken by one conditional
    UPDATE, which locks the inventory row only when it takes from it: orders for a
    sold-out product are turned down without queuing behind each other on that row.
    Several lines lock their rows as `inventory_rows_lock` does (in id order), so
    concurrent orders and cancels over the same products in any line order queue up
    instead of deadlocking, and are taken by the same statement only when none is short.
    A product with no inventory row has nothing in stock. Its statements are prepared on
    the connection (`prepared_cursor`): they run per order.
    """
    if len(lines) == 1:
        return _stock_take_one(lines[0])
    if len({line.product_id for line in lines}) != len(lines):
        # The statement would take a repeated product's row once, with either quantity.
        raise ValueError("stock_take takes each product in one line")
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            _stock_take_sql(),
            {
                "product_ids": [line.product_id for line in lines],
                "quantities": [line.quantity for line in lines],
            },
        )
        short = dict(cursor.fetchall())
    return [
        _shortage(line.product_id, line.quantity, short[line.product_id])
        for line in lines
        if line.product_id in short
    ]


@functools.cache
def _stock_take_sql() -> str:
    """The lines' rows locked, their shortages found and, when there are none, the stock
    taken, in one statement: one round trip on the order's path, not two.

    Under READ COMMITTED the lock returns each row as its last committed writer left it,
    and holds it there until the order commits, so the new quantity is computed from the
    locked one, which the check read: not from the UPDATE's own row. That row is the
    version the statement began with, and PostgreSQL checks the new row's constraints on
    it before it rechecks the row a writer committed since: for a product restocked
    while the order waited for it (from 0), `quantity - 1` from the older version broke
    the non-negative check, and a good order got a 409."""
    return f"""
WITH locked AS ({inventory_rows_lock_sql()}),
wanted AS (
    SELECT * FROM unnest(%(product_ids)s::bigint[], %(quantities)s::integer[])
        AS wanted(product_id, quantity)
),
short AS (
    SELECT wanted.product_id, COALESCE(locked.quantity, 0) AS available
    FROM wanted LEFT JOIN locked ON locked.product_id = wanted.product_id
    WHERE COALESCE(locked.quantity, 0) < wanted.quantity
),
taken AS (
    UPDATE inventory_inventory AS i
    SET quantity = locked.quantity - wanted.quantity, updated_at = now()
    FROM locked JOIN wanted ON wanted.product_id = locked.product_id
    WHERE i.id = locked.pk AND NOT EXISTS (SELECT FROM short)
    RETURNING i.merchant_id, i.product_id, i.quantity, i.low_stock_threshold,
              wanted.quantity AS taken
), {_LOW_STOCK_EVENTS_SQL}
SELECT product_id, available FROM short
"""  # noqa: S608 - only fixed fragments are interpolated


# The UPDATE locks the row only when it takes from it. The stock a refusal reports is
# read by the same statement, from the snapshot its UPDATE began with (a data-modifying
# CTE's changes are not visible to the rest of its statement): one round trip, where a
# second statement took another.
_STOCK_TAKE_ONE_SQL = f"""
WITH taken AS (
    UPDATE inventory_inventory SET quantity = quantity - %(quantity)s, updated_at = now()
    WHERE product_id = %(product_id)s AND quantity >= %(quantity)s
    RETURNING merchant_id, product_id, quantity, low_stock_threshold, %(quantity)s::integer AS taken
), {_LOW_STOCK_EVENTS_SQL}
SELECT (SELECT count(*) FROM taken),
       (SELECT quantity FROM inventory_inventory WHERE product_id = %(product_id)s)
"""  # noqa: S608 - only fixed fragments are interpolated


def _stock_take_one(line: StockLine) -> list[dict]:
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            _STOCK_TAKE_ONE_SQL, {"product_id": line.product_id, "quantity": line.quantity}
        )
        taken, quantity = cursor.fetchone()
    if taken == 1:
        return []
    if quantity is None or quantity < line.quantity:
        # Refused on the stock the snapshot holds: what the statement read is the stock.
        return [_shortage(line.product_id, line.quantity, quantity or 0)]
    # The snapshot had enough, so the UPDATE waited for a concurrent writer and refused on
    # what it left (less stock, or no row): read that, now committed. Rare, so the common
    # refusal keeps its single round trip. Never more than requested: a restock since
    # then came after the refusal.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT quantity FROM inventory_inventory WHERE product_id = %s", [line.product_id]
        )
        row = cursor.fetchone()
    available = min(row[0] if row else 0, line.quantity - 1)
    return [_shortage(line.product_id, line.quantity, available)]


def _shortage(product_id: int, requested: int, available: int) -> dict:
    return {"product_id": product_id, "requested": requested, "available": max(available, 0)}


def stock_return(*, lines: QuerySet) -> int:
    """Put back the stock of `lines`, rows with a `product_id` and a `quantity` (an
    order's items); return how many inventory rows it changed.

    It runs in the caller's transaction, as one statement whose subquery locks the rows
    through `inventory_lock_for_update`, in id order, before the statement changes them.
    A product with no inventory row gets nothing back.
    """
    returned = (
        lines.filter(product_id=OuterRef("product_id"))
        .values("product_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    locked = inventory_lock_for_update(product_ids=lines.values("product_id"))
    return Inventory.objects.filter(pk__in=locked.values("pk")).update(
        quantity=F("quantity") + Subquery(returned), updated_at=Now()
    )


def low_stock_summary_build(*, day) -> int:
    """Store each merchant's low-stock items for `day` and email the owner; return the
    number of reports written. Running it twice for one day sends nothing new; a report
    whose email did not go out is emailed by the next run."""
    rows = (
        Inventory.objects.filter(LOW_STOCK)
        .select_related("product")
        .order_by("merchant_id", "product__title")
    )
    by_merchant: dict[int, list] = {}
    for row in rows.iterator(chunk_size=2000):
        by_merchant.setdefault(row.merchant_id, []).append(
            {
                "inventory_id": row.pk,
                "product_id": row.product_id,
                "title": row.product.title,
                "quantity": row.quantity,
                "low_stock_threshold": row.low_stock_threshold,
            }
        )
    # A statement for a thousand merchants, not one (and a savepoint) for each: tens of
    # thousands of merchants are stored in seconds. A report already stored for the day
    # (an earlier run) is kept as it was.
    stored = LowStockReport.objects.filter(day=day)
    before = stored.count()
    LowStockReport.objects.bulk_create(
        [
            LowStockReport(merchant_id=merchant_id, day=day, items=items)
            for merchant_id, items in by_merchant.items()
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    written = stored.count() - before
    low_stock_reports_email(day=day)
    return written


def low_stock_reports_email(*, day) -> None:
    """Email the owners the reports of `day` not emailed yet, those of earlier runs too:
    the report is what the stock was when it was stored, whatever it is now.

    Each email is sent with no transaction open and marked once it has left, so a run
    that dies before that leaves it to the next run; the lock keeps two runs from sending
    it at once. An email that fails is raised only once every other owner has had theirs,
    so one address the mail server refuses holds back no other merchant's, and the task's
    retry sends what is left.
    """
    pending = (
        LowStockReport.objects.filter(day=day, emailed_at__isnull=True)
        .exclude(merchant__owner__email="")
        .order_by("pk")
        .values_list("pk", "merchant_id")
    )
    failure: Exception | None = None
    for report_id, merchant_id in pending:
        with session_lock(f"inventory.low-stock-summary:{merchant_id}:{day:%Y-%m-%d}"):
            report = (
                LowStockReport.objects.select_related("merchant__owner")
                .filter(pk=report_id, emailed_at__isnull=True)
                .first()
            )
            if report is None:
                continue
            lines = "\n".join(f"- {i['title']}: {i['quantity']} left" for i in report.items)
            try:
                send_mail(
                    subject=f"{report.merchant.name}: {len(report.items)} items low on stock",
                    message=f"Low stock on {day:%Y-%m-%d}:\n\n{lines}\n",
                    from_email=None,
                    recipient_list=[report.merchant.owner.email],
                )
            except Exception as exc:  # whatever the backend raised, the others go out first
                failure = failure or exc
                continue
            LowStockReport.objects.filter(pk=report.pk).update(emailed_at=timezone.now())
    if failure is not None:
        raise failure
