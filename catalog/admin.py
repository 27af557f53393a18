from django.contrib import admin

from catalog.models import Product, ProductCategory
from catalog.services import (
    category_create,
    category_delete,
    category_update,
    product_create,
    product_delete,
    product_update,
)
from geomarket.hooks import hook_call
from geomarket.service_admin import ServiceAdmin


@admin.register(ProductCategory)
class ProductCategoryAdmin(ServiceAdmin, admin.ModelAdmin):
    list_display = ("id", "name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def create(self, data):
        return category_create(**data)

    def update(self, obj, data):
        category_update(category=obj, data=data)

    def delete(self, obj):
        category_delete(category=obj)


@admin.register(Product)
class ProductAdmin(ServiceAdmin, admin.ModelAdmin):
    list_display = ("id", "title", "merchant", "category", "price", "is_published", "created_at")
    list_filter = ("is_published", "category")
    search_fields = ("title", "merchant__name")
    raw_id_fields = ("merchant",)
    list_select_related = ("merchant", "category")

    def get_readonly_fields(self, request, obj=None):
        # A product stays with its merchant, whose stock row names it too.
        return () if obj is None else ("merchant",)

    def create(self, data):
        return product_create(**data)

    def update(self, obj, data):
        product_update(product=obj, data=data)

    def delete(self, obj):
        product_delete(product=obj)

    def lock_for_delete(self, queryset):
        hook_call("products_deleting", product_ids=queryset.values("pk"))
