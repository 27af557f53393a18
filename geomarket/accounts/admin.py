from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from geomarket.accounts.models import User
from geomarket.accounts.roles import is_operator

# The fields that give a user standing: the operator role, superuser, and the model
# permissions (which only the admin reads).
STANDING_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def _has_standing(user) -> bool:
    return user.is_superuser or is_operator(user)


def _compares_token_key(model, lookup: str) -> bool:
    """Whether the admin filter `lookup` on `model` compares an API token's key: a prefix
    or a range on it reads the key out by the count of rows it keeps. The key is the
    token's primary key, so besides `key` there are `pk` and a relation to a token
    compared itself (`auth_token__gt=`), which Django lets through as it would any id."""
    parts = lookup.split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        opts = model._meta
        if opts.concrete_model is Token and part in ("pk", opts.pk.name):
            return True
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return False
        model = field.related_model
        if model is None:
            return False
        if model._meta.concrete_model is Token and not _names_field(model, parts[index + 1 :]):
            # `auth_token`, `auth_token__startswith`: the relation compares the key.
            return True
    return False


def _names_field(model, parts: list[str]) -> bool:
    try:
        model._meta.get_field(parts[0])
    except (IndexError, FieldDoesNotExist):
        return False
    return True


class TokenKeysUnread:
    """A model admin whose filters read no API token's key out (`_compares_token_key`),
    as Django's refuses filters on passwords."""

    def lookup_allowed(self, lookup, value, request=None):
        if _compares_token_key(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(User)
class GeoMarketUserAdmin(TokenKeysUnread, UserAdmin):
    """Every operator runs the whole admin (`accounts.backends`), but giving standing, and
    changing the accounts that hold it, stays a superuser's: else any operator could make
    itself or anyone a superuser or an operator, or take over a superuser's or another
    operator's account by its password. An operator manages customers', owners' and
    couriers' accounts; the others it sees read-only."""

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, *STANDING_FIELDS)

    def _may_write(self, request, obj) -> bool:
        return request.user.is_superuser or obj is None or not _has_standing(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)


# DRF's own, registered before this app's admin is imported.
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class GeoMarketTokenAdmin(TokenKeysUnread, TokenAdmin):
    """API tokens are credentials: whoever reads one acts as its user through the API (and
    sees, say, a customer's handover codes). An operator sees who has a token and since
    when; the keys, a token's own pages (titled by its key, as is the message on adding
    one) and writing tokens stay a superuser's."""

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if request.user.is_superuser else tuple(n for n in shown if n != "key")

    def get_list_display_links(self, request, list_display):
        if not request.user.is_superuser:
            return None
        return super().get_list_display_links(request, list_display)

    def has_view_permission(self, request, obj=None):
        listed = obj is None or request.user.is_superuser
        return listed and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)
