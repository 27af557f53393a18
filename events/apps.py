from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened to orders and stock, as a feed and as signed webhooks: the apps
    above record events in their own transactions, and this app sends them on."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        # The relay and replays send the delivery task by name; importing it registers it
        # with the Celery app outside the worker too.
        from events import tasks  # noqa: F401
