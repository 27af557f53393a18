from django.urls import include, path

from merchants import apis

merchant_urlpatterns = [
    path("", apis.MerchantListApi.as_view(), name="merchant-list"),
    path("nearby/", apis.MerchantsNearbyApi.as_view(), name="merchants-nearby"),
    path("delivering-to/", apis.MerchantsDeliveringToApi.as_view(), name="merchants-delivering-to"),
    path("<int:merchant_id>/", apis.MerchantDetailApi.as_view(), name="merchant-detail"),
    path(
        "<int:merchant_id>/delivery-zones/",
        apis.DeliveryZoneListApi.as_view(),
        name="delivery-zone-list",
    ),
    path(
        "<int:merchant_id>/delivery-zones/<int:zone_id>/",
        apis.DeliveryZoneDetailApi.as_view(),
        name="delivery-zone-detail",
    ),
    path("<int:merchant_id>/hours/", apis.MerchantHoursApi.as_view(), name="merchant-hours"),
    path(
        "<int:merchant_id>/closures/", apis.ClosureListApi.as_view(), name="merchant-closure-list"
    ),
    path(
        "<int:merchant_id>/closures/<int:closure_id>/",
        apis.ClosureDetailApi.as_view(),
        name="merchant-closure-detail",
    ),
    path("<int:merchant_id>/slot-plan/", apis.SlotPlanApi.as_view(), name="merchant-slot-plan"),
    path("<int:merchant_id>/slots/", apis.SlotListApi.as_view(), name="merchant-slots"),
]

urlpatterns = [
    path("merchants/", include(merchant_urlpatterns)),
]
