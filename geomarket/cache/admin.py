from django.contrib import admin

from geomarket.cache.models import PendingBump


@admin.register(PendingBump)
class PendingBumpAdmin(admin.ModelAdmin):
    list_display = ("id", "namespace", "created_at")
    list_filter = ("namespace",)
