from django.urls import include, path

from delivery import apis, views

courier_urlpatterns = [
    path("", apis.CourierListApi.as_view(), name="courier-list"),
    path("me/", apis.CourierMeApi.as_view(), name="courier-me"),
    path("me/location/", apis.CourierLocationApi.as_view(), name="courier-location"),
    path("me/orders/", apis.CourierMyOrdersApi.as_view(), name="courier-orders"),
    path("me/route/", apis.CourierRouteApi.as_view(), name="courier-me-route"),
    path("<id:courier_id>/", apis.CourierDetailApi.as_view(), name="courier-detail"),
    path("<id:courier_id>/track/", apis.CourierTrackApi.as_view(), name="courier-track"),
    path("<id:courier_id>/route/", apis.CourierRouteApi.as_view(), name="courier-route"),
]

dispatch_urlpatterns = [
    path(
        "<id:order_id>/courier-candidates/",
        apis.CourierCandidatesApi.as_view(),
        name="courier-candidates",
    ),
    path(
        "priority-assignment/",
        apis.PriorityAssignmentApi.as_view(),
        name="priority-assignment",
    ),
]

delivery_urlpatterns = [
    path("eta/", views.eta_view, name="delivery-eta"),
]

urlpatterns = [
    path("orders/", include(dispatch_urlpatterns)),
    path("couriers/", include(courier_urlpatterns)),
    path("delivery/", include(delivery_urlpatterns)),
]
