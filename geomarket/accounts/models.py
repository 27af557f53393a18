from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Upper

USERNAME_TAKEN = "A user with that username already exists."


class User(AbstractUser):
    """A person using GeoMarket; roles come from related profiles, see `roles.py`."""

    class Meta(AbstractUser.Meta):
        db_table = "accounts_user"
        constraints = [
            # Usernames differ by more than case; the serializer's iexact check alone lets
            # two concurrent registrations of `Dave` and `dave` both through.
            models.UniqueConstraint(
                Upper("username"),
                name="accounts_user_username_upper_unique",
                violation_error_message=USERNAME_TAKEN,
            ),
        ]
