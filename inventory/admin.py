from django.contrib import admin

from inventory.models import Inventory, InventoryAdjustment, LowStockReport


@admin.register(Inventory)
class InventoryAdmin(admin.ModelAdmin):
    list_display = ("id", "product", "merchant", "quantity", "low_stock_threshold", "updated_at")
    search_fields = ("product__title", "merchant__name")
    raw_id_fields = ("merchant", "product")
    list_select_related = ("product", "merchant")


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
