from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"

    def ready(self) -> None:
        # Beat sends this task by name; importing it registers it outside the worker too.
        from delivery import tasks  # noqa: F401
