from django.apps import AppConfig


class LaneConfig(AppConfig):
    name = "geomarket.lane"
    label = "lane"
    verbose_name = "Event-loop lane"

    def ready(self):
        # Registers the lane's system checks.
        from geomarket.lane import checks  # noqa: F401
