from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from geomarket.api import paths
from geomarket.api.schema_view import SchemaView
from geomarket.health import healthz
from geomarket.home import home
from geomarket.maps.views import favicon

handler400 = "geomarket.api.views.bad_request"
handler403 = "geomarket.api.views.permission_denied"
handler404 = "geomarket.api.views.not_found"
handler500 = "geomarket.api.views.server_error"

# Before the apps' paths, which take their ids with it.
paths.register()

# Each domain app declares its own paths under /api/v1/; named by module, from the
# settings' list, so that geomarket imports no app (README, "Layers").
api_v1 = [
    path("auth/", include("geomarket.accounts.urls")),
    *(path("", include(f"{app}.urls")) for app in settings.DOMAIN_APPS),
]

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(api_v1)),
    *(path("", include(f"{app}.site_urls")) for app in settings.SITE_URL_APPS),
]
