from django.contrib import admin

from catalog.models import Product, ProductCategory


@admin.register(ProductCategory)
class ProductCategoryAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "merchant", "category", "price", "is_published", "created_at")
    list_filter = ("is_published", "category")
    search_fields = ("title", "merchant__name")
    raw_id_fields = ("merchant",)
    list_select_related = ("merchant", "category")
