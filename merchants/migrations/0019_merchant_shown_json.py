from django.db import migrations

# Delivering-to's answer from SQL kept in the database (merchants/delivering_sql.py):
# each merchant's `shown_json`, rendered by a trigger on its row, and the function
# answering delivering-to. Both functions are generated from the code, installed here and
# replaced after any later `migrate` that finds them changed. The writes that change
# what `shown_json` shows without writing the merchant's row (its address's text, its
# categories, however written: bulk, raw SQL or TRUNCATE) touch its row, which renders
# it again; a change of the address's point reaches the row already (migration 0002).
COLUMN = """
ALTER TABLE merchants_merchant ADD COLUMN shown_json text NOT NULL DEFAULT '';
"""

TRIGGERS = """
CREATE TRIGGER merchants_merchant_shown_json_update
BEFORE INSERT OR UPDATE ON merchants_merchant
FOR EACH ROW EXECUTE FUNCTION merchants_merchant_shown_json_update();

CREATE FUNCTION merchants_address_shown_json_touch() RETURNS trigger AS $$
BEGIN
    UPDATE merchants_merchant SET shown_json = '' WHERE address_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER merchants_address_shown_json_touch
AFTER UPDATE ON merchants_address
FOR EACH ROW WHEN ((OLD.line1, OLD.line2, OLD.city, OLD.postal_code, OLD.country)
                   IS DISTINCT FROM (NEW.line1, NEW.line2, NEW.city, NEW.postal_code, NEW.country))
EXECUTE FUNCTION merchants_address_shown_json_touch();

CREATE FUNCTION merchants_categories_shown_json_touch() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE merchants_merchant SET shown_json = ''
        WHERE id IN (SELECT merchant_id FROM added);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE merchants_merchant SET shown_json = ''
        WHERE id IN (SELECT merchant_id FROM removed);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE merchants_merchant SET shown_json = ''
        WHERE id IN (SELECT merchant_id FROM added UNION SELECT merchant_id FROM removed);
    ELSE
        UPDATE merchants_merchant SET shown_json = '';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER merchants_categories_shown_json_add
AFTER INSERT ON merchants_merchant_categories REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION merchants_categories_shown_json_touch();
CREATE TRIGGER merchants_categories_shown_json_remove
AFTER DELETE ON merchants_merchant_categories REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION merchants_categories_shown_json_touch();
CREATE TRIGGER merchants_categories_shown_json_change
AFTER UPDATE ON merchants_merchant_categories
REFERENCING OLD TABLE AS removed NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION merchants_categories_shown_json_touch();
CREATE TRIGGER merchants_categories_shown_json_truncate
AFTER TRUNCATE ON merchants_merchant_categories
FOR EACH STATEMENT EXECUTE FUNCTION merchants_categories_shown_json_touch();

UPDATE merchants_merchant SET shown_json = '';
"""

BACKWARD = """
DROP TRIGGER merchants_categories_shown_json_truncate ON merchants_merchant_categories;
DROP TRIGGER merchants_categories_shown_json_change ON merchants_merchant_categories;
DROP TRIGGER merchants_categories_shown_json_remove ON merchants_merchant_categories;
DROP TRIGGER merchants_categories_shown_json_add ON merchants_merchant_categories;
DROP FUNCTION merchants_categories_shown_json_touch();
DROP TRIGGER merchants_address_shown_json_touch ON merchants_address;
DROP FUNCTION merchants_address_shown_json_touch();
DROP TRIGGER merchants_merchant_shown_json_update ON merchants_merchant;
DROP FUNCTION merchants_merchant_shown_json_update();
DROP FUNCTION merchants_delivering_to(geography, integer, timestamptz, timestamptz, integer);
"""


def install_functions(apps, schema_editor) -> None:
    from merchants import delivering_sql

    delivering_sql.sync(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("merchants", "0018_merchant_inactive_idx")]

    operations = [
        migrations.RunSQL(COLUMN, "ALTER TABLE merchants_merchant DROP COLUMN shown_json;"),
        migrations.RunPython(install_functions, migrations.RunPython.noop),
        migrations.RunSQL(TRIGGERS, BACKWARD),
    ]
