from django.db import migrations

# Django has no composite foreign keys; this one makes the database refuse a stock row
# whose merchant differs from its product's merchant.
FORWARD = """
ALTER TABLE inventory_inventory
ADD CONSTRAINT inventory_product_merchant_fk
FOREIGN KEY (product_id, merchant_id) REFERENCES catalog_product (id, merchant_id)
ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
"""

BACKWARD = "ALTER TABLE inventory_inventory DROP CONSTRAINT inventory_product_merchant_fk;"


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial"), ("catalog", "0002_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
