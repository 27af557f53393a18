"""Model permissions for operators.

API.md opens the admin to operators, whole: "Django admin for every model". The admin
grants by model permissions (`user.has_perm`), which Django's `ModelBackend` gives a
superuser, all of them, and anyone else only as granted row by row. This backend gives
an active operator every one, as `ModelBackend` does a superuser. Nothing but the admin
asks for model permissions here (the API's permissions are its own classes, over the
roles), so this opens nothing else.
"""

from django.contrib.auth.backends import BaseBackend

from geomarket.accounts.roles import is_active_operator


class OperatorBackend(BaseBackend):
    """Grants permissions only: it authenticates no one (`authenticate` answers None)."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return is_active_operator(user_obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return is_active_operator(user_obj)
