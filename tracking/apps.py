from django.apps import AppConfig


class TrackingConfig(AppConfig):
    """What a customer, a merchant and an operator see of an order on its way: where its
    courier is (when they may see it) and when it should arrive."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "tracking"
