from django.db import migrations

# Merchant.location is a copy of its address point. Triggers keep the copy exact for
# every write path, services, admin and raw SQL alike.
FORWARD = """
CREATE FUNCTION merchants_merchant_copy_location() RETURNS trigger AS $$
BEGIN
    SELECT location INTO NEW.location FROM merchants_address WHERE id = NEW.address_id;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER merchants_merchant_copy_location
BEFORE INSERT OR UPDATE OF address_id, location ON merchants_merchant
FOR EACH ROW EXECUTE FUNCTION merchants_merchant_copy_location();

CREATE FUNCTION merchants_address_push_location() RETURNS trigger AS $$
BEGIN
    UPDATE merchants_merchant SET location = NEW.location
    WHERE address_id = NEW.id AND NOT ST_Equals(location::geometry, NEW.location::geometry);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER merchants_address_push_location
AFTER UPDATE OF location ON merchants_address
FOR EACH ROW EXECUTE FUNCTION merchants_address_push_location();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS merchants_address_push_location ON merchants_address;
DROP FUNCTION IF EXISTS merchants_address_push_location();
DROP TRIGGER IF EXISTS merchants_merchant_copy_location ON merchants_merchant;
DROP FUNCTION IF EXISTS merchants_merchant_copy_location();
"""


class Migration(migrations.Migration):
    dependencies = [("merchants", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
