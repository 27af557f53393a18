from django.urls import path

from inventory import apis

urlpatterns = [
    path("", apis.InventoryListApi.as_view(), name="inventory-list"),
    path("<int:inventory_id>/", apis.InventoryDetailApi.as_view(), name="inventory-detail"),
    path("<int:inventory_id>/adjust/", apis.InventoryAdjustApi.as_view(), name="inventory-adjust"),
]
