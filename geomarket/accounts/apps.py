from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "geomarket.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The start-up check of `settings.HOOKS` (`geomarket.hooks`), registered once the
        # apps it names are loaded.
        from geomarket import hooks  # noqa: F401
        from geomarket.accounts import checks  # noqa: F401
