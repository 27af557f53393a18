from django.conf import settings
from django.contrib.gis.forms.widgets import OSMWidget

# The map library, pinned and served from our static files (static/vendor/README.md):
# the version Django's own map widget script is written for.
OPENLAYERS = "vendor/ol/7.2.2/"


class OfflineMapWidget(OSMWidget):
    """Django's map widget with its library loaded from our static files instead of a
    CDN, on a plain background unless `MAP_TILE_URL` names a tile server to draw under
    the geometry: with no internet access the admin's maps still edit zones and points."""

    template_name = "maps/map-widget.html"

    class Media:
        extend = False
        css = {"all": (OPENLAYERS + "ol.css", "gis/css/ol3.css")}
        js = (OPENLAYERS + "ol.js", "gis/js/OLMapWidget.js")

    def __init__(self, attrs=None):
        lat, lng = settings.MAP_CENTER
        super().__init__({"default_lat": lat, "default_lon": lng, **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["map_tile_url"] = settings.MAP_TILE_URL
        return context
