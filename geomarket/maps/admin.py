from django.contrib.gis.admin import GISModelAdmin

from geomarket.maps.widgets import OfflineMapWidget


class MapAdmin(GISModelAdmin):
    """The admin of a model with geometries: map widgets that work offline."""

    gis_widget = OfflineMapWidget
