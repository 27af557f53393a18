from decimal import Decimal
from typing import Any

from django.db import transaction

from catalog.models import Product, ProductCategory
from merchants.models import Merchant


@transaction.atomic
def category_create(*, name: str, slug: str) -> ProductCategory:
    return ProductCategory.objects.create(name=name, slug=slug)


@transaction.atomic
def category_update(*, category: ProductCategory, data: dict[str, Any]) -> ProductCategory:
    for attr, value in data.items():
        setattr(category, attr, value)
    category.save()
    return category


@transaction.atomic
def category_delete(*, category: ProductCategory) -> None:
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
    for attr, value in data.items():
        setattr(product, attr, value)
    product.save()
    return product


@transaction.atomic
def product_delete(*, product: Product) -> None:
    product.delete()
