"""Each product's public JSON, kept in the row by a trigger, for products/nearby to send
as it is (`catalog.selectors.PRODUCTS_NEARBY_ANSWER_SQL`).

The column is the database's, like an index: the model does not declare it, so the ORM
neither loads nor writes it, and every write path (save, update, raw SQL) goes through
the trigger.
"""

from django.db import migrations

LISTING_TRIGGER = """
ALTER TABLE catalog_product ADD COLUMN listing_json text NOT NULL DEFAULT '';

-- As DRF renders a datetime: ISO 8601 in UTC with "Z", microseconds only when any.
CREATE FUNCTION catalog_iso_utc(moment timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(date_part('microseconds', moment)::bigint, 1000000) = 0 THEN ''
           ELSE to_char(moment AT TIME ZONE 'UTC', '.US') END
        || 'Z'
$$;

CREATE FUNCTION catalog_product_listing_json_update() RETURNS trigger AS $$
BEGIN
    -- The fields and forms of ProductOutputSerializer; to_json escapes the free text.
    NEW.listing_json := '{"id":' || NEW.id
        || ',"merchant_id":' || NEW.merchant_id
        || ',"category_id":' || NEW.category_id
        || ',"title":' || to_json(NEW.title)::text
        || ',"description":' || to_json(NEW.description)::text
        || ',"price":"' || NEW.price
        || '","is_published":' || CASE WHEN NEW.is_published THEN 'true' ELSE 'false' END
        || ',"created_at":"' || catalog_iso_utc(NEW.created_at)
        || '","updated_at":"' || catalog_iso_utc(NEW.updated_at) || '"}';
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER catalog_product_listing_json_update
BEFORE INSERT OR UPDATE ON catalog_product
FOR EACH ROW EXECUTE FUNCTION catalog_product_listing_json_update();

UPDATE catalog_product SET listing_json = '';
"""

DROP_LISTING_TRIGGER = """
DROP TRIGGER IF EXISTS catalog_product_listing_json_update ON catalog_product;
DROP FUNCTION IF EXISTS catalog_product_listing_json_update();
ALTER TABLE catalog_product DROP COLUMN IF EXISTS listing_json;
DROP FUNCTION IF EXISTS catalog_iso_utc(timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_search")]

    operations = [migrations.RunSQL(LISTING_TRIGGER, DROP_LISTING_TRIGGER)]
