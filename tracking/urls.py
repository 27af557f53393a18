from django.urls import path

from tracking import apis

urlpatterns = [
    path("orders/<int:order_id>/tracking/", apis.OrderTrackingApi.as_view(), name="order-tracking"),
]
