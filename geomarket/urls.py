from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics.apis import CombinedReportApi
from catalog.urls import category_urlpatterns, product_urlpatterns, search_urlpatterns
from delivery.urls import courier_urlpatterns, delivery_urlpatterns, dispatch_urlpatterns
from geomarket.health import healthz
from geomarket.home import home
from inventory.apis import MerchantStockApi
from orders.apis import MerchantOrdersApi

handler400 = "geomarket.api.views.bad_request"
handler403 = "geomarket.api.views.permission_denied"
handler404 = "geomarket.api.views.not_found"
handler500 = "geomarket.api.views.server_error"

api_v1 = [
    path("auth/", include("geomarket.accounts.urls")),
    path("merchants/", include("merchants.urls")),
    path(
        "merchants/<int:merchant_id>/inventory/",
        MerchantStockApi.as_view(),
        name="merchant-inventory",
    ),
    path(
        "merchants/<int:merchant_id>/orders/",
        MerchantOrdersApi.as_view(),
        name="merchant-orders",
    ),
    path("orders/analytics/", CombinedReportApi.as_view(), name="orders-analytics"),
    path("orders/", include("orders.urls")),
    path("orders/", include(dispatch_urlpatterns)),
    path("couriers/", include(courier_urlpatterns)),
    path("delivery/", include(delivery_urlpatterns)),
    path("categories/", include(category_urlpatterns)),
    path("products/", include(product_urlpatterns)),
    path("inventory/", include("inventory.urls")),
    path("search/", include(search_urlpatterns)),
    path("analytics/", include("analytics.urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(api_v1)),
]
