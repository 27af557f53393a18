"""The admin site, as Django's but for whom it opens to and its sign-in.

API.md opens the admin to operators. Django's site and sign-in form each test `is_staff`
themselves; here both ask the operator role's own rule (`roles.is_active_operator`), the
one that also gives operators every model permission (`accounts.backends`). The sign-in
spends from the password-guess budget the API's token login spends from
(`geomarket.ratelimit.PASSWORD_GUESSES`)."""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig

from geomarket.accounts.roles import is_active_operator
from geomarket.ratelimit import login_rate_limited


class GeoMarketAdminSite(AdminSite):
    @property
    def login_form(self):
        # Imported when first used: Django imports this module (its app config) before
        # the models, which the form's module imports.
        from geomarket.accounts.forms import OperatorAuthenticationForm

        return OperatorAuthenticationForm

    def has_permission(self, request):
        return is_active_operator(request.user)

    def login(self, request, extra_context=None):
        return login_rate_limited(super().login)(request, extra_context)


class GeoMarketAdminConfig(AdminConfig):
    default_site = "geomarket.admin_site.GeoMarketAdminSite"
