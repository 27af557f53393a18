from django.db import migrations

# The zones tile layer (merchants/tiles.py) keeps the zones of active merchants by leaving
# out those of inactive ones: a hash of the inactive merchants' ids, read from this index
# once a tile, and probed by each zone. Joining each zone to its merchant instead (a probe
# of the primary key per zone, or a hash of every active merchant) cost about a fifth of
# a dense tile's time. Inactive merchants are few; the index holds only them.
FORWARD = """
CREATE INDEX merchant_inactive_idx ON merchants_merchant (id) WHERE NOT is_active;
"""

BACKWARD = """
DROP INDEX merchant_inactive_idx;
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0017_zone_area_mercator")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
