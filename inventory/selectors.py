from django.db.models import F, QuerySet

from geomarket.accounts.roles import is_operator, user_merchant_id
from inventory.models import Inventory


def inventory_visible_to(*, user) -> QuerySet[Inventory]:
    if is_operator(user):
        return Inventory.objects.all()
    merchant_id = user_merchant_id(user)
    if merchant_id is None:
        return Inventory.objects.none()
    return Inventory.objects.filter(merchant_id=merchant_id)


def inventory_list(
    *,
    user,
    merchant_id: int | None = None,
    product_id: int | None = None,
    low_stock: bool | None = None,
) -> QuerySet[Inventory]:
    rows = inventory_visible_to(user=user)
    if merchant_id is not None:
        rows = rows.filter(merchant_id=merchant_id)
    if product_id is not None:
        rows = rows.filter(product_id=product_id)
    if low_stock is True:
        rows = rows.filter(quantity__lte=F("low_stock_threshold"))
    elif low_stock is False:
        rows = rows.filter(quantity__gt=F("low_stock_threshold"))
    return rows.order_by("id")


def merchant_stock_list(*, merchant_id: int) -> QuerySet:
    """A merchant's stock with product details, by product title, as plain rows."""
    return (
        Inventory.objects.filter(merchant_id=merchant_id)
        .order_by("product__title", "id")
        .values(
            "id",
            "product_id",
            "quantity",
            "low_stock_threshold",
            "updated_at",
            product_title=F("product__title"),
            price=F("product__price"),
            category_name=F("product__category__name"),
        )
    )
