"""Each product's JSON (`catalog.shapes.PRODUCT`), kept in its row for products/nearby to
send as it is.

The column is the database's, like an index: the model does not declare it, so the ORM
neither loads nor writes it, and a trigger renders it on every write (save, update, raw
SQL). The trigger function is generated from PRODUCT: after each `migrate`, when the
database's function is not the one PRODUCT gives (a field was added, renamed or
retyped), it is replaced and every row rendered again. Catalog migration 0004 made the
column and the trigger.
"""

from django.db import connections

from catalog.shapes import PRODUCT, PRODUCT_JSON_COLUMN
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.shapes import installed_function_body, stored_json_trigger_sql

TABLE = "catalog_product"


def trigger_function() -> tuple[str, str, str]:
    """The trigger function's name, its body as PRODUCT gives it, and the statement that
    installs it."""
    return stored_json_trigger_sql(PRODUCT, table=TABLE, column=PRODUCT_JSON_COLUMN)


def sync(*, using: str = "default") -> bool:
    """Install the trigger function PRODUCT gives, if the database has another, and render
    every product again; True when it did.

    Nothing is done while the table lacks a column PRODUCT reads (or the JSON column,
    before migration 0004): migrated part of the way, the database gets its function when
    the migration adding the column has run."""
    function, body, create = trigger_function()
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            [TABLE],
        )
        present = {row[0] for row in cursor.fetchall()}
        if not {PRODUCT_JSON_COLUMN, *PRODUCT.columns} <= present:
            return False
        if installed_function_body(cursor, function) == body:
            return False
        cursor.execute(create)
        # The BEFORE UPDATE trigger renders each row from its own columns.
        cursor.execute(f"UPDATE {TABLE} SET {PRODUCT_JSON_COLUMN} = ''")  # noqa: S608
    # Cached answers hold the products as the old function rendered them.
    versions_bump(Namespace.CATALOG)
    return True


def sync_after_migrate(sender, *, using: str, **kwargs) -> None:
    sync(using=using)
