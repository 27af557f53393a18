from django.contrib import admin

from geomarket.service_admin import ServiceAdmin
from inventory.locks import inventory_rows_lock
from inventory.models import Inventory, InventoryAdjustment, LowStockReport
from inventory.services import inventory_create, inventory_delete, inventory_update


@admin.register(Inventory)
class InventoryAdmin(ServiceAdmin, admin.ModelAdmin):
    list_display = ("id", "product", "merchant", "quantity", "low_stock_threshold", "updated_at")
    search_fields = ("product__title", "merchant__name")
    raw_id_fields = ("product",)
    list_select_related = ("product", "merchant")

    def get_readonly_fields(self, request, obj=None):
        # The merchant is the product's; a stock row stays with its product.
        return ("merchant",) if obj is None else ("merchant", "product")

    def create(self, data):
        return inventory_create(**data)

    def update(self, obj, data):
        inventory_update(inventory=obj, data=data)

    def delete(self, obj):
        inventory_delete(inventory=obj)

    def lock_for_delete(self, queryset):
        inventory_rows_lock(product_ids=queryset.values("product_id"))


@admin.register(InventoryAdjustment)
class InventoryAdjustmentAdmin(admin.ModelAdmin):
    list_display = ("id", "inventory", "delta", "quantity_after", "reason", "actor", "created_at")
    search_fields = ("reason",)
    raw_id_fields = ("inventory", "actor")
    list_select_related = ("actor",)


@admin.register(LowStockReport)
class LowStockReportAdmin(admin.ModelAdmin):
    list_display = ("id", "merchant", "day", "emailed_at")
    list_filter = ("day",)
    search_fields = ("merchant__name",)
    raw_id_fields = ("merchant",)
