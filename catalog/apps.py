from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from catalog import stored_json

        post_migrate.connect(stored_json.sync_after_migrate, sender=self)
        post_migrate.connect(_kept_plans_after_migrate, sender=self)


def _kept_plans_after_migrate(sender, *, using: str, **kwargs) -> None:
    """Catalog's kept plans (`geomarket.kept_plans`) as the code gives them."""
    from catalog.selectors import KEPT_PLANS
    from geomarket import kept_plans

    kept_plans.sync(KEPT_PLANS, using=using)
