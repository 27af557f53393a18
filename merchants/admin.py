from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from merchants.models import Address, DeliveryZone, Merchant


@admin.register(Address)
class AddressAdmin(GISModelAdmin):
    list_display = ("id", "line1", "postal_code", "city", "country")
    list_filter = ("country", "city")
    search_fields = ("line1", "postal_code", "city")


class DeliveryZoneInline(admin.TabularInline):
    model = DeliveryZone
    fields = ("name", "delivery_fee", "min_order_amount", "is_active")
    extra = 0
    show_change_link = True


@admin.register(Merchant)
class MerchantAdmin(GISModelAdmin):
    list_display = ("id", "name", "owner", "is_active", "created_at")
    list_filter = ("is_active", "categories")
    search_fields = ("name", "owner__username", "phone")
    raw_id_fields = ("owner", "address")
    readonly_fields = ("location", "created_at", "updated_at")
    filter_horizontal = ("categories",)
    inlines = [DeliveryZoneInline]


@admin.register(DeliveryZone)
class DeliveryZoneAdmin(GISModelAdmin):
    list_display = ("id", "name", "merchant", "delivery_fee", "min_order_amount", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "merchant__name")
    raw_id_fields = ("merchant",)
