from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from geomarket.hooks import hook_call
from geomarket.service_admin import ServiceAdmin
from merchants.models import Address, DeliveryZone, Merchant
from merchants.services import (
    address_create,
    address_delete,
    address_update,
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_create,
    merchant_delete,
    merchant_update,
)


@admin.register(Address)
class AddressAdmin(ServiceAdmin, GISModelAdmin):
    list_display = ("id", "line1", "postal_code", "city", "country")
    list_filter = ("country", "city")
    search_fields = ("line1", "postal_code", "city")

    def create(self, data):
        return address_create(**data)

    def update(self, obj, data):
        address_update(address=obj, data=data)

    def delete(self, obj):
        address_delete(address=obj)


class DeliveryZoneInline(admin.TabularInline):
    model = DeliveryZone
    fields = ("name", "delivery_fee", "min_order_amount", "is_active")
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        # A zone needs its area, drawn on the zone's own page.
        return False


@admin.register(Merchant)
class MerchantAdmin(ServiceAdmin, GISModelAdmin):
    list_display = ("id", "name", "owner", "is_active", "created_at")
    list_filter = ("is_active", "categories")
    search_fields = ("name", "owner__username", "phone")
    raw_id_fields = ("owner", "address")
    readonly_fields = ("location", "created_at", "updated_at")
    filter_horizontal = ("categories",)
    inlines = [DeliveryZoneInline]

    def create(self, data):
        return merchant_create(**data)

    def update(self, obj, data):
        merchant_update(merchant=obj, data=data)

    def delete(self, obj):
        merchant_delete(merchant=obj)

    def lock_for_delete(self, queryset):
        # Catalog's Product, named by the relation: merchants import no higher app.
        products = Merchant._meta.get_field("products").related_model
        hook_call(
            "products_deleting",
            product_ids=products.objects.filter(merchant__in=queryset).values("pk"),
        )

    def save_formset(self, request, form, formset, change):
        """The zones edited on the merchant's page, through the zone services."""
        formset.save(commit=False)
        for zone in formset.deleted_objects:
            delivery_zone_delete(zone=zone)
        for zone, changed in formset.changed_objects:
            delivery_zone_update(zone=zone, data={name: getattr(zone, name) for name in changed})


@admin.register(DeliveryZone)
class DeliveryZoneAdmin(ServiceAdmin, GISModelAdmin):
    list_display = ("id", "name", "merchant", "delivery_fee", "min_order_amount", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "merchant__name")
    raw_id_fields = ("merchant",)

    def create(self, data):
        return delivery_zone_create(**data)

    def update(self, obj, data):
        delivery_zone_update(zone=obj, data=data)

    def delete(self, obj):
        delivery_zone_delete(zone=obj)
