from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from catalog import stored_json
        from geomarket import kept_plans

        post_migrate.connect(stored_json.sync_after_migrate, sender=self)
        post_migrate.connect(
            kept_plans.sync_after_migrate("catalog.selectors"), sender=self, weak=False
        )
