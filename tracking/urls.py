from django.urls import path

from tracking import apis

urlpatterns = [
    path("orders/<id:order_id>/tracking/", apis.OrderTrackingApi.as_view(), name="order-tracking"),
    path("orders/<id:order_id>/stream/", apis.OrderStreamApi.as_view(), name="order-stream"),
    path(
        "orders/<id:order_id>/stream-ticket/",
        apis.OrderStreamTicketApi.as_view(),
        name="order-stream-ticket",
    ),
]
