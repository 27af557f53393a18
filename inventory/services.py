from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from catalog.models import Product
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import Conflict, DomainError
from inventory.models import Inventory, InventoryAdjustment, LowStockReport


class StockUnderflow(Conflict):
    code = "stock_underflow"
    default_message = "The adjustment would take the stock below zero; nothing was changed."


@transaction.atomic
def inventory_create(*, product: Product, quantity: int, low_stock_threshold: int = 5) -> Inventory:
    versions_bump(Namespace.CATALOG)
    if Inventory.objects.filter(product=product).exists():
        raise DomainError("This product already has an inventory row.", field="product_id")
    return Inventory.objects.create(
        merchant_id=product.merchant_id,
        product=product,
        quantity=quantity,
        low_stock_threshold=low_stock_threshold,
    )


@transaction.atomic
def inventory_update(*, inventory: Inventory, data: dict) -> Inventory:
    versions_bump(Namespace.CATALOG)
    for attr, value in data.items():
        setattr(inventory, attr, value)
    inventory.save()
    return inventory


@transaction.atomic
def inventory_delete(*, inventory: Inventory) -> None:
    versions_bump(Namespace.CATALOG)
    inventory.delete()


@transaction.atomic
def inventory_adjust(*, inventory_id: int, delta: int, reason: str = "", actor=None) -> Inventory:
    """Change the stock by `delta` in one conditional UPDATE.

    The `quantity >= -delta` condition and the row lock the UPDATE takes make concurrent
    adjustments serialise; a result below zero updates no row and raises 409.
    """
    versions_bump(Namespace.CATALOG)
    updated = Inventory.objects.filter(pk=inventory_id, quantity__gte=-delta).update(
        quantity=F("quantity") + delta, updated_at=Now()
    )
    if not updated:
        if not Inventory.objects.filter(pk=inventory_id).exists():
            raise Inventory.DoesNotExist
        raise StockUnderflow()
    inventory = Inventory.objects.get(pk=inventory_id)
    InventoryAdjustment.objects.create(
        inventory=inventory,
        delta=delta,
        quantity_after=inventory.quantity,
        reason=reason,
        actor=actor,
    )
    return inventory


def low_stock_summary_build(*, day) -> int:
    """Store each merchant's low-stock items for `day` and email the owner; return the
    number of reports written. Running it twice for one day sends nothing new."""
    rows = (
        Inventory.objects.filter(quantity__lte=F("low_stock_threshold"))
        .select_related("product", "merchant__owner")
        .order_by("merchant_id", "product__title")
    )
    by_merchant: dict[int, list] = {}
    owners = {}
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
        owners[row.merchant_id] = (row.merchant.name, row.merchant.owner.email)
    written = 0
    for merchant_id, items in by_merchant.items():
        with transaction.atomic():
            report, created = LowStockReport.objects.get_or_create(
                merchant_id=merchant_id, day=day, defaults={"items": items}
            )
            if not created:
                continue
            written += 1
            name, email = owners[merchant_id]
            if email:
                lines = "\n".join(f"- {i['title']}: {i['quantity']} left" for i in items)
                send_mail(
                    subject=f"{name}: {len(items)} items low on stock",
                    message=f"Low stock on {day:%Y-%m-%d}:\n\n{lines}\n",
                    from_email=None,
                    recipient_list=[email],
                )
                LowStockReport.objects.filter(pk=report.pk).update(emailed_at=timezone.now())
    return written
