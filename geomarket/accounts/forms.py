from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from geomarket.accounts.roles import is_active_operator


class OperatorAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in, for whom the operator role's rule names."""

    def confirm_login_allowed(self, user):
        # In place of Django's own tests (`is_active`, `is_staff`), not after them.
        if not is_active_operator(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
