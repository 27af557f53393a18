from django.urls import include, path

from inventory import apis

inventory_urlpatterns = [
    path("", apis.InventoryListApi.as_view(), name="inventory-list"),
    path("<id:inventory_id>/", apis.InventoryDetailApi.as_view(), name="inventory-detail"),
    path("<id:inventory_id>/adjust/", apis.InventoryAdjustApi.as_view(), name="inventory-adjust"),
]

urlpatterns = [
    path(
        "merchants/<id:merchant_id>/inventory/",
        apis.MerchantStockApi.as_view(),
        name="merchant-inventory",
    ),
    path("inventory/", include(inventory_urlpatterns)),
]
