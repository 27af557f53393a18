from decimal import Decimal
from typing import Any

from django.db import transaction

from catalog.models import Product, ProductCategory
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import DomainError
from geomarket.services import model_update, unique_claim
from merchants.models import Merchant


class CategorySlugTaken(DomainError):
    code = "category_slug_taken"
    default_message = "A category with this slug already exists."


class CategorySlugDigits(DomainError):
    code = "category_slug_digits"
    default_message = "A slug needs a character other than a digit: digits name a category's id."


def _slug_usable(slug: str) -> None:
    """Wherever a category is named by its id or its slug (`CategoryRefField`: the
    `category` filters), digits are read as an id: no filter could name a category by a
    slug of digits alone."""
    if slug.isdigit():
        raise CategorySlugDigits(field="slug")


def _slug_claimed(*, slug: str, category_id: int | None = None):
    """The write of a category with `slug`: another category holding it is a 400 naming
    `slug`, as the serializer's check answers it (`unique_claim`)."""
    return unique_claim(
        taken=ProductCategory.objects.filter(slug=slug).exclude(pk=category_id).exists,
        refusal=CategorySlugTaken(field="slug"),
    )


@transaction.atomic
def category_create(*, name: str, slug: str) -> ProductCategory:
    versions_bump(Namespace.CATALOG)
    _slug_usable(slug)
    with _slug_claimed(slug=slug):
        return ProductCategory.objects.create(name=name, slug=slug)


@transaction.atomic
def category_update(*, category: ProductCategory, data: dict[str, Any]) -> ProductCategory:
    versions_bump(Namespace.CATALOG)
    if data.get("slug", category.slug) != category.slug:
        _slug_usable(data["slug"])
    with _slug_claimed(slug=data.get("slug", category.slug), category_id=category.pk):
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
