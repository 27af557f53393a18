from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"

    def ready(self) -> None:
        # Web processes send these tasks by name through the outbox and beat; importing
        # them registers them with the Celery app outside the worker too.
        from inventory import tasks  # noqa: F401
