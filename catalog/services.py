from decimal import Decimal
from typing import Any

from django.db import transaction

from catalog.models import Product, ProductCategory
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.services import model_update
from merchants.models import Merchant


@transaction.atomic
def category_create(*, name: str, slug: str) -> ProductCategory:
    versions_bump(Namespace.CATALOG)
    return ProductCategory.objects.create(name=name, slug=slug)


@transaction.atomic
def category_update(*, category: ProductCategory, data: dict[str, Any]) -> ProductCategory:
    versions_bump(Namespace.CATALOG)
    return model_update(instance=category, data=data)


@transaction.atomic
def category_delete(*, category: ProductCategory) -> None:
    # Deleting it takes it out of merchants' categories too.
    versions_bump(Namespace.CATALOG, Namespace.MERCHANTS)
    category.delete()


@transaction.atomic
def product_create(
    *,
    merchant: Merchant,
    category: ProductCategory,
    title: str,
    price: Decimal,
    description: str = "",
    is_published: bool = True,
) -> Product:
    versions_bump(Namespace.CATALOG)
    return Product.objects.create(
        merchant=merchant,
        category=category,
        title=title,
        description=description,
        price=price,
        is_published=is_published,
    )


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any]) -> Product:
    versions_bump(Namespace.CATALOG)
    return model_update(instance=product, data=data)


@transaction.atomic
def product_delete(*, product: Product) -> None:
    versions_bump(Namespace.CATALOG)
    product.delete()
