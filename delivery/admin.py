from django.contrib import admin

from delivery.models import Courier
from geomarket.maps.admin import MapAdmin


@admin.register(Courier)
class CourierAdmin(MapAdmin):
    list_display = ("id", "name", "vehicle", "status", "capacity", "location_updated_at")
    list_filter = ("status", "vehicle")
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
