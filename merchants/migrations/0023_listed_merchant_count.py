from django.db import migrations

from merchants import listed_count
from merchants.selectors import LISTED_COUNT_TABLE

# The public list's count of merchants, unfiltered, kept by statement triggers on the
# merchants (merchants/listed_count.py): its one row, made here; the trigger function,
# generated from the list's rule and installed by `listed_count.install`, which counts
# with the merchants locked until this migration commits, triggers made.
TABLE = f"""
CREATE TABLE {LISTED_COUNT_TABLE} (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    merchants bigint NOT NULL CHECK (merchants >= 0)
);
INSERT INTO {LISTED_COUNT_TABLE} (merchants) VALUES (0);
"""  # noqa: S608 - a fixed name

FUNCTION = listed_count.FUNCTION
TRIGGERS = f"""
CREATE TRIGGER merchants_listed_count_insert
AFTER INSERT ON merchants_merchant REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER merchants_listed_count_update
AFTER UPDATE ON merchants_merchant REFERENCING OLD TABLE AS removed NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER merchants_listed_count_delete
AFTER DELETE ON merchants_merchant REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER merchants_listed_count_truncate
AFTER TRUNCATE ON merchants_merchant
FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}();
"""

BACKWARD = f"""
DROP TRIGGER merchants_listed_count_truncate ON merchants_merchant;
DROP TRIGGER merchants_listed_count_delete ON merchants_merchant;
DROP TRIGGER merchants_listed_count_update ON merchants_merchant;
DROP TRIGGER merchants_listed_count_insert ON merchants_merchant;
DROP FUNCTION {FUNCTION}();
"""


def install(apps, schema_editor):
    listed_count.install(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0022_zone_tile_pieces")]

    operations = [
        migrations.RunSQL(TABLE, f"DROP TABLE {LISTED_COUNT_TABLE};"),
        migrations.RunPython(install, migrations.RunPython.noop),
        migrations.RunSQL(TRIGGERS, BACKWARD),
    ]
