from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MerchantsConfig(AppConfig):
    name = "merchants"

    def ready(self) -> None:
        from merchants import delivering_sql

        post_migrate.connect(delivering_sql.sync_after_migrate, sender=self)
        post_migrate.connect(_kept_plans_after_migrate, sender=self)


def _kept_plans_after_migrate(sender, *, using: str, **kwargs) -> None:
    """Merchants' kept plans (`geomarket.kept_plans`) as the code gives them."""
    from geomarket import kept_plans
    from merchants.selectors import KEPT_PLANS

    kept_plans.sync(KEPT_PLANS, using=using)
