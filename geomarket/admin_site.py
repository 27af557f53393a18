"""The admin site, as Django's but for its sign-in, which spends from the password-guess
budget the API's token login spends from (`geomarket.ratelimit.PASSWORD_GUESSES`)."""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig

from geomarket.ratelimit import login_rate_limited


class GeoMarketAdminSite(AdminSite):
    def login(self, request, extra_context=None):
        return login_rate_limited(super().login)(request, extra_context)


class GeoMarketAdminConfig(AdminConfig):
    default_site = "geomarket.admin_site.GeoMarketAdminSite"
