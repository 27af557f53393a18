from django.urls import include, path

from analytics import apis

report_urlpatterns = [
    path("top-products/", apis.TopProductsApi.as_view(), name="analytics-top-products"),
    path("revenue/", apis.RevenueApi.as_view(), name="analytics-revenue"),
    path("merchants/", apis.MerchantsReportApi.as_view(), name="analytics-merchants"),
]

urlpatterns = [
    path("orders/analytics/", apis.CombinedReportApi.as_view(), name="orders-analytics"),
    path("analytics/", include(report_urlpatterns)),
]
