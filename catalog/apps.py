from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from catalog import stored_json

        post_migrate.connect(stored_json.sync_after_migrate, sender=self)
