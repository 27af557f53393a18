import functools

from django.db.models import F, QuerySet

from geomarket.accounts.roles import merchant_scope
from geomarket.api.json_pages import CompiledJsonPages
from geomarket.api.pagination import CountedPage
from geomarket.sql import CompiledPage, CompiledQuery, fetch_all
from inventory.models import LOW_STOCK, Inventory
from inventory.shapes import INVENTORY, MERCHANT_STOCK

# What the compiled reads below are built with in place of each call's ids: no id is
# negative.
_STAND_INS = {
    "own_merchant_id": -1_000_001,
    "merchant_id": -1_000_002,
    "product_id": -1_000_003,
    "inventory_id": -1_000_004,
}


def _visible(*, operator: bool, own_merchant_id: int | None) -> QuerySet[Inventory]:
    if operator:
        return Inventory.objects.all()
    if own_merchant_id is None:
        return Inventory.objects.none()
    return Inventory.objects.filter(merchant_id=own_merchant_id)


def inventory_visible_to(*, user) -> QuerySet[Inventory]:
    operator, own_merchant_id = merchant_scope(user)
    return _visible(operator=operator, own_merchant_id=own_merchant_id)


def _filtered(
    rows: QuerySet[Inventory],
    *,
    merchant_id: int | None = None,
    product_id: int | None = None,
    low_stock: bool | None = None,
) -> QuerySet[Inventory]:
    if merchant_id is not None:
        rows = rows.filter(merchant_id=merchant_id)
    if product_id is not None:
        rows = rows.filter(product_id=product_id)
    if low_stock is True:
        rows = rows.filter(LOW_STOCK)
    elif low_stock is False:
        rows = rows.exclude(LOW_STOCK)
    return rows.order_by("id")


def _slots(**given: bool) -> dict[str, int]:
    return {name: _STAND_INS[name] for name, present in given.items() if present}


@functools.cache
def _inventory_page(
    *, operator: bool, merchant_id: bool, product_id: bool, low_stock: bool | None
) -> CompiledPage:
    slots = _slots(own_merchant_id=not operator, merchant_id=merchant_id, product_id=product_id)
    rows = _filtered(
        _visible(operator=operator, own_merchant_id=slots.get("own_merchant_id")),
        merchant_id=slots.get("merchant_id"),
        product_id=slots.get("product_id"),
        low_stock=low_stock,
    )
    return CompiledPage(rows.values_list(*INVENTORY.columns), slots=slots)


def inventory_page(
    *,
    user,
    offset: int,
    limit: int,
    merchant_id: int | None = None,
    product_id: int | None = None,
    low_stock: bool | None = None,
) -> CountedPage:
    """A page of the stock `user` sees, by id, filtered, as rows of `INVENTORY`'s columns, and
    the count of all of them, by one statement compiled once per combination of filters."""
    operator, own_merchant_id = merchant_scope(user)
    if not operator and own_merchant_id is None:
        return CountedPage(rows=[], count=0)
    page = _inventory_page(
        operator=operator,
        merchant_id=merchant_id is not None,
        product_id=product_id is not None,
        low_stock=low_stock,
    )
    given = {
        "own_merchant_id": own_merchant_id,
        "merchant_id": merchant_id,
        "product_id": product_id,
    }
    values = {name: value for name, value in given.items() if value is not None}
    return page.read(offset=offset, limit=limit, **values)


@functools.cache
def _inventory_row(*, operator: bool) -> CompiledQuery:
    slots = _slots(own_merchant_id=not operator, inventory_id=True)
    rows = _visible(operator=operator, own_merchant_id=slots.get("own_merchant_id"))
    return CompiledQuery(
        rows.filter(pk=slots["inventory_id"]).values_list(*INVENTORY.columns), slots=slots
    )


def inventory_row(*, user, inventory_id: int) -> tuple | None:
    """The stock `inventory_id`, as a row of `INVENTORY`'s columns, if `user` sees it."""
    operator, own_merchant_id = merchant_scope(user)
    if not operator and own_merchant_id is None:
        return None
    compiled = _inventory_row(operator=operator)
    values = {"inventory_id": inventory_id}
    if not operator:
        values["own_merchant_id"] = own_merchant_id
    rows = fetch_all(compiled.sql, compiled.params(**values))
    return rows[0] if rows else None


def _merchant_stock(*, merchant_id: int) -> QuerySet[Inventory]:
    """A merchant's stock with product details, by product title."""
    return (
        Inventory.objects.filter(merchant_id=merchant_id)
        .annotate(
            product_title=F("product__title"),
            price=F("product__price"),
            category_name=F("product__category__name"),
        )
        .order_by("product_title", "id")
    )


@functools.cache
def _merchant_stock_page() -> CompiledJsonPages:
    merchant_id = _STAND_INS["merchant_id"]
    return CompiledJsonPages(
        MERCHANT_STOCK,
        _merchant_stock(merchant_id=merchant_id),
        rows=lambda stock: stock.values(*MERCHANT_STOCK.columns),
        slots={"merchant_id": merchant_id},
    )


def merchant_stock_page(*, merchant_id: int, offset: int, limit: int) -> CountedPage:
    """A page of the merchant's stock, by product title, as its JSON text
    (`MERCHANT_STOCK` objects) rendered by PostgreSQL, and the count of all of it, by one
    statement compiled once."""
    return _merchant_stock_page().read(offset=offset, limit=limit, merchant_id=merchant_id)
