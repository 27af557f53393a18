from django.db import migrations

from merchants.zone_triggers import zone_copy_triggers, zone_copy_triggers_drop

# The zones layer of the vector tiles (merchants/tiles.py) reads, for every zone meeting a
# tile, its outline in Web Mercator, id, merchant and fee: a z12 tile of the bench city
# thousands of zones. Read from the zones' own table, whose rows are wide (two copies of
# the area, names, amounts) and lie in the order they were written, each zone of a tile
# was on a page of its own (about 1,800 pages for a z12 tile). This table holds only what
# the tile draws, for the active zones, written in spatial order: a tile's zones share
# pages, a third of the scan's time. It is no model: nothing else reads it.
#
# Statement triggers keep it equal to the zones on every write path
# (merchants/zone_triggers.py). The zones of inactive merchants stay here and are left out
# by the tile itself, so a merchant's writes never touch this table.
TABLE = "merchants_zone_tile_outline"

# Rows written in bulk (the first fill, a COPY of many zones) go in the order of their
# centre's geohash: nearby zones end up on the same pages.
OUTLINES_OF = f"""
    INSERT INTO {TABLE} (zone_id, merchant_id, delivery_fee, outline)
    SELECT z.id, z.merchant_id, z.delivery_fee::text, z.area_mercator
    FROM {{zones}} AS z
    WHERE z.is_active{{only}}
    ORDER BY ST_GeoHash(ST_Centroid(z.area::geometry))"""  # noqa: S608 - fixed fragments only

# The zones of an update whose drawn columns changed (a renamed zone is not redrawn), or
# whose id did (a zone removed and one added).
REDRAWN = """
        SELECT n.id FROM new_zones AS n LEFT JOIN old_zones AS o ON o.id = n.id
        WHERE o.id IS NULL
           OR (n.is_active, n.merchant_id, n.delivery_fee, ST_AsBinary(n.area_mercator))
              IS DISTINCT FROM
              (o.is_active, o.merchant_id, o.delivery_fee, ST_AsBinary(o.area_mercator))"""

TRIGGERS = zone_copy_triggers(
    name="outlines",
    table=TABLE,
    add=OUTLINES_OF.format(zones="added_zones", only=""),
    change=f"""DELETE FROM {TABLE}
    WHERE zone_id IN ({REDRAWN})
       OR zone_id IN (SELECT id FROM old_zones EXCEPT SELECT id FROM new_zones);
    {OUTLINES_OF.format(zones="new_zones", only=f" AND z.id IN ({REDRAWN})")}""",  # noqa: S608
)

FORWARD = f"""
CREATE TABLE {TABLE} (
    zone_id bigint PRIMARY KEY,
    merchant_id bigint NOT NULL,
    delivery_fee text NOT NULL,
    outline geometry(MultiPolygon, 3857) NOT NULL
);

{OUTLINES_OF.format(zones="merchants_deliveryzone", only="")};

CREATE INDEX {TABLE}_outline ON {TABLE} USING gist (outline);

{TRIGGERS}
-- The tiles read the outlines now; the zones' own Web Mercator index (migration 0017)
-- has no reader left.
DROP INDEX merchants_deliveryzone_area_mercator;

ANALYZE {TABLE};
"""  # noqa: S608 - fixed fragments only

BACKWARD = f"""
CREATE INDEX merchants_deliveryzone_area_mercator
ON merchants_deliveryzone USING gist (area_mercator) WHERE is_active;
{zone_copy_triggers_drop(name="outlines")}
DROP TABLE {TABLE};
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0020_delivering_cells")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
