from django.urls import include, path

from orders import apis

order_urlpatterns = [
    path("", apis.OrderListApi.as_view(), name="order-list"),
    path("stats/", apis.OrderStatsApi.as_view(), name="order-stats"),
    path("<id:order_id>/", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("<id:order_id>/status/", apis.OrderStatusApi.as_view(), name="order-status"),
    path("<id:order_id>/incidents/", apis.OrderIncidentsApi.as_view(), name="order-incidents"),
]

urlpatterns = [
    path(
        "merchants/<id:merchant_id>/orders/",
        apis.MerchantOrdersApi.as_view(),
        name="merchant-orders",
    ),
    path("orders/", include(order_urlpatterns)),
]
