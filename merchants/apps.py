from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MerchantsConfig(AppConfig):
    name = "merchants"

    def ready(self) -> None:
        from geomarket import kept_plans
        from merchants import delivering_sql, listed_count

        post_migrate.connect(delivering_sql.sync_after_migrate, sender=self)
        post_migrate.connect(listed_count.sync_after_migrate, sender=self)
        post_migrate.connect(
            kept_plans.sync_after_migrate("merchants.selectors"), sender=self, weak=False
        )
