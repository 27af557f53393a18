from django.db import migrations

# RFC 7946 §3.1.6: a GeoJSON exterior ring is counterclockwise, a hole clockwise. The zone
# services now write areas so (`geomarket.geo.area_right_handed`); this turns the areas
# written before, once. PostGIS reads no meaning in a ring's direction: the tables derived
# from the zones (parts, coverage cells, tile outlines and pieces) are redrawn by their
# statement triggers, as on any write of an area, with what they held before but for
# the order of the points. Only the zones not yet right-handed are written.
FORWARD = """
UPDATE merchants_deliveryzone
SET area = ST_ForcePolygonCCW(area::geometry)::geography
WHERE NOT ST_IsPolygonCCW(area::geometry);
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0023_listed_merchant_count")]

    # Going back leaves the areas right-handed: the same areas, as any version reads them.
    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop)]
