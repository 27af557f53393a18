from django.apps import AppConfig


class MapsConfig(AppConfig):
    """Maps served by us alone: the vendored map library (static/vendor) and the admin's
    map widget on it, which needs no internet access."""

    name = "geomarket.maps"
    label = "maps"
