"""What delivering-to's answer is made of, kept in the database (migration 0019):

- each merchant's `shown_json`: `MERCHANT_SHOWN` rendered from its row, its address and
  its categories, unclosed (an answer goes on with fields of its own), by a trigger on
  every write of the merchant (save, update, raw SQL); writes of an address or of a
  merchant's categories touch the merchant's row, which renders it again. An answer of
  a hundred merchants then joins and renders none of that, a few milliseconds of it;
- the function `merchants_delivering_to`, which runs `DELIVERING_TO_ANSWER_SQL` with the
  plan each session keeps (`merchants.selectors.DELIVERING_TO_PLAN`, a kept plan of
  `geomarket.kept_plans`, installed with the merchants' other kept plans).

The trigger is generated from the shapes. After each `migrate`, a trigger function the
database holds otherwise is replaced and every merchant rendered again (as catalog's
stored JSON is kept).
"""

from django.db import connections

from geomarket.answer_cache import Namespace, versions_bump
from geomarket.shapes import installed_function_body, stored_json_trigger_sql
from merchants.shapes import MERCHANT_SHOWN, location_json_sql

SHOWN_COLUMN = "shown_json"

# The row `MERCHANT_SHOWN` is rendered from, for the merchant `NEW`.
_SHOWN_ROW_SQL = f"""SELECT NEW.id, NEW.owner_id, NEW.name, NEW.description, NEW.phone,
               ARRAY(SELECT mc.productcategory_id FROM merchants_merchant_categories mc
                     WHERE mc.merchant_id = NEW.id ORDER BY 1) AS category_ids,
               a.line1, a.line2, a.city, a.postal_code, a.country,
               {location_json_sql("NEW.location")} AS location_json,
               NEW.is_active, NEW.created_at, NEW.timezone
        FROM merchants_address a WHERE a.id = NEW.address_id"""  # noqa: S608


def trigger_function() -> tuple[str, str, str]:
    """The trigger function's name, its body (as pg_proc.prosrc holds it) and the
    statement that installs it."""
    return stored_json_trigger_sql(
        MERCHANT_SHOWN,
        table="merchants_merchant",
        column=SHOWN_COLUMN,
        row_sql=_SHOWN_ROW_SQL,
        unclosed=True,
    )


def sync(*, using: str = "default") -> bool:
    """Install the trigger function the code gives where the database holds another,
    rendering every merchant again; True when it did. Nothing before migration 0019 made
    the column."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'merchants_merchant' AND column_name = %s",
            [SHOWN_COLUMN],
        )
        if cursor.fetchone() is None:
            return False
        trigger, body, create = trigger_function()
        installed = installed_function_body(cursor, trigger)
        if installed == body:
            return False
        cursor.execute(create)
        # A new trigger renders the rows once its migration has made it.
        if installed is None:
            return True
        cursor.execute(f"UPDATE merchants_merchant SET {SHOWN_COLUMN} = ''")  # noqa: S608
    # Cached answers hold the merchants as the old function rendered them.
    versions_bump(Namespace.MERCHANTS)
    return True


def sync_after_migrate(sender, *, using: str, **kwargs) -> None:
    sync(using=using)
