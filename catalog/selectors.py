from django.db.models import Q, QuerySet

from catalog.models import Product, ProductCategory
from geomarket.accounts.roles import is_operator, user_merchant_id


def category_list() -> QuerySet[ProductCategory]:
    return ProductCategory.objects.order_by("name", "id")


def _category_filter(category: str) -> Q:
    return Q(category_id=int(category)) if category.isdigit() else Q(category__slug=category)


def products_visible_to(*, user) -> QuerySet[Product]:
    """Published products of active merchants, plus the owner's own, or all for operators."""
    if is_operator(user):
        return Product.objects.all()
    public = Q(is_published=True, merchant__is_active=True)
    own_merchant_id = user_merchant_id(user)
    if own_merchant_id is not None:
        public |= Q(merchant_id=own_merchant_id)
    return Product.objects.filter(public)


def product_list(
    *,
    user,
    merchant_id: int | None = None,
    category: str | None = None,
    is_published: bool | None = None,
) -> QuerySet[Product]:
    products = products_visible_to(user=user)
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    if category:
        products = products.filter(_category_filter(category))
    if is_published is not None:
        products = products.filter(is_published=is_published)
    return products.order_by("id")


def product_visible(*, user, product_id: int) -> Product | None:
    return products_visible_to(user=user).filter(pk=product_id).first()
