from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from delivery.models import Courier


@admin.register(Courier)
class CourierAdmin(GISModelAdmin):
    list_display = ("id", "name", "vehicle", "status", "capacity", "location_updated_at")
    list_filter = ("status", "vehicle")
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
