from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "geomarket.accounts"
    label = "accounts"
    verbose_name = "Accounts"
