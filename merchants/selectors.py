from django.db.models import QuerySet

from geomarket.accounts.roles import is_operator, user_merchant_id
from merchants.models import DeliveryZone, Merchant


def merchant_list(*, category: str | None = None, q: str | None = None) -> QuerySet[Merchant]:
    merchants = (
        Merchant.objects.filter(is_active=True)
        .select_related("address")
        .prefetch_related("categories")
        .order_by("name", "id")
    )
    if category:
        lookup = "categories__id" if category.isdigit() else "categories__slug"
        merchants = merchants.filter(**{lookup: category})
    if q:
        merchants = merchants.filter(name__icontains=q)
    return merchants


def merchant_visible(*, user, merchant_id: int) -> Merchant | None:
    """Active merchants are public; an inactive one is seen by its owner and operators."""
    merchant = (
        Merchant.objects.select_related("address")
        .prefetch_related("categories")
        .filter(pk=merchant_id)
        .first()
    )
    if merchant is None:
        return None
    if merchant.is_active or is_operator(user) or user_merchant_id(user) == merchant.pk:
        return merchant
    return None


def delivery_zone_list(*, merchant: Merchant, include_inactive: bool) -> QuerySet[DeliveryZone]:
    zones = DeliveryZone.objects.filter(merchant=merchant).order_by("id")
    if not include_inactive:
        zones = zones.filter(is_active=True)
    return zones
