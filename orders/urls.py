from django.urls import path

from orders import apis

urlpatterns = [
    path("", apis.OrderListApi.as_view(), name="order-list"),
    path("stats/", apis.OrderStatsApi.as_view(), name="order-stats"),
    path("<int:order_id>/", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("<int:order_id>/status/", apis.OrderStatusApi.as_view(), name="order-status"),
]
