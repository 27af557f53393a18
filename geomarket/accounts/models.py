from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person using GeoMarket; roles come from related profiles, see `roles.py`."""

    class Meta(AbstractUser.Meta):
        db_table = "accounts_user"
