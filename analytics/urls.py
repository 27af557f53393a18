from django.urls import path

from analytics import apis

urlpatterns = [
    path("top-products/", apis.TopProductsApi.as_view(), name="analytics-top-products"),
    path("revenue/", apis.RevenueApi.as_view(), name="analytics-revenue"),
    path("merchants/", apis.MerchantsReportApi.as_view(), name="analytics-merchants"),
]
