from django.urls import include, path

from merchants import apis

merchant_urlpatterns = [
    path("", apis.MerchantListApi.as_view(), name="merchant-list"),
    path("nearby/", apis.MerchantsNearbyApi.as_view(), name="merchants-nearby"),
    path("delivering-to/", apis.MerchantsDeliveringToApi.as_view(), name="merchants-delivering-to"),
    path("<id:merchant_id>/", apis.MerchantDetailApi.as_view(), name="merchant-detail"),
    path(
        "<id:merchant_id>/delivery-zones/",
        apis.DeliveryZoneListApi.as_view(),
        name="delivery-zone-list",
    ),
    path(
        "<id:merchant_id>/delivery-zones/<id:zone_id>/",
        apis.DeliveryZoneDetailApi.as_view(),
        name="delivery-zone-detail",
    ),
    path("<id:merchant_id>/hours/", apis.MerchantHoursApi.as_view(), name="merchant-hours"),
    path("<id:merchant_id>/closures/", apis.ClosureListApi.as_view(), name="merchant-closure-list"),
    path(
        "<id:merchant_id>/closures/<id:closure_id>/",
        apis.ClosureDetailApi.as_view(),
        name="merchant-closure-detail",
    ),
    path("<id:merchant_id>/slot-plan/", apis.SlotPlanApi.as_view(), name="merchant-slot-plan"),
    path("<id:merchant_id>/slots/", apis.SlotListApi.as_view(), name="merchant-slots"),
]

urlpatterns = [
    path("merchants/", include(merchant_urlpatterns)),
]
