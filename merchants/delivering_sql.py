"""What delivering-to's answer is made of, kept in the database (migration 0019):

- each merchant's `shown_json`: `MERCHANT_SHOWN` rendered from its row, its address and
  its categories, unclosed (an answer goes on with fields of its own), by a trigger on
  every write of the merchant (save, update, raw SQL); writes of an address or of a
  merchant's categories touch the merchant's row, which renders it again. An answer of
  a hundred merchants then joins and renders none of that, a few milliseconds of it;
- the function `merchants_delivering_to`, which runs `DELIVERING_TO_ANSWER_SQL`: each
  session keeps its plan, a generic one (the point is one typed parameter, its geometry
  and unit vector computed once), so that an answer costs no planning, about a
  millisecond, whether the caller prepares its call or sends it with its values written
  in.

Both functions are generated from the code (the shapes, the selector's statement). After
each `migrate`, a function the database holds otherwise is replaced, and when the
trigger's was, every merchant is rendered again (as catalog's stored JSON is kept).
"""

from django.db import connections

from geomarket.shapes import installed_function_body, stored_json_trigger_sql
from merchants.selectors import DELIVERING_TO_ANSWER_SQL, POINT_CELL_SQL
from merchants.shapes import MERCHANT_SHOWN, location_json_sql

SHOWN_COLUMN = "shown_json"
ANSWER_FUNCTION = "merchants_delivering_to"

# The row `MERCHANT_SHOWN` is rendered from, for the merchant `NEW`.
_SHOWN_ROW_SQL = f"""SELECT NEW.id, NEW.owner_id, NEW.name, NEW.description, NEW.phone,
               ARRAY(SELECT mc.productcategory_id FROM merchants_merchant_categories mc
                     WHERE mc.merchant_id = NEW.id ORDER BY 1) AS category_ids,
               a.line1, a.line2, a.city, a.postal_code, a.country,
               {location_json_sql("NEW.location")} AS location_json,
               NEW.is_active, NEW.created_at, NEW.timezone
        FROM merchants_address a WHERE a.id = NEW.address_id"""  # noqa: S608

# The function's parameters, each as the statement spells it (the longest spellings
# first), its name in the function and its type.
PARAMETERS = (
    ("merchants_unit_vector(%(point)s::geography)", "q_unit", "geometry"),
    (POINT_CELL_SQL, "q_cell", "integer"),
    ("%(point)s::geography", "q_point", "geography"),
    ("%(point)s::geometry", "q_geometry", "geometry"),
    # Computed once: in a generic plan the sum would be computed again for each merchant,
    # several times (adding days reads the session's time zone).
    ("%(now)s::timestamptz + interval '14 days'", "q_horizon", "timestamptz"),
    ("%(now)s::timestamptz", "q_now", "timestamptz"),
    ("%(open_at)s", "q_open_at", "timestamptz"),
    ("%(limit)s", "q_limit", "integer"),
    ("%(prep_time_default_s)s", "q_prep_time_default_s", "integer"),
)


def answer_statement(names: dict[str, str]) -> str:
    """`DELIVERING_TO_ANSWER_SQL` with the parameters `names` gives, by their function
    names."""
    statement = DELIVERING_TO_ANSWER_SQL
    for spelling, name, _ in PARAMETERS:
        statement = statement.replace(spelling, names[name])
    if "%(" in statement:
        raise ValueError("the answer's statement has a parameter the function lacks")
    return statement


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


def answer_function() -> tuple[str, str]:
    """The answer function's body and the statement that installs it."""
    statement = answer_statement({name: name for _, name, _ in PARAMETERS})
    body = f"""
DECLARE
    q_geometry geometry := q_point::geometry;
    q_unit geometry := merchants_unit_vector(q_point);
    q_cell integer := merchants_zone_cell(q_geometry);
    q_horizon timestamptz := q_now + interval '14 days';
BEGIN
    RETURN QUERY {statement};
END;
"""
    return body, (
        f"CREATE OR REPLACE FUNCTION {ANSWER_FUNCTION}(q_point geography, q_limit integer,"
        " q_now timestamptz, q_open_at timestamptz, q_prep_time_default_s integer)"
        " RETURNS TABLE (body text, changes_at float8) LANGUAGE plpgsql STABLE"
        # The statement's cost hardly depends on the point: a custom plan would cost its
        # planning on every call for the same plan.
        " SET plan_cache_mode = force_generic_plan"
        # The planner counts every row of the point's cell, where the walk stops after a
        # few hundred: above jit_above_cost, compiling would cost a hundred times the run.
        " SET jit = off"
        f" AS $${body}$$"
    )


def sync(*, using: str = "default") -> bool:
    """Install the functions the code gives where the database holds others, rendering
    every merchant again when the trigger's changed; True when it did anything. Nothing
    before migration 0019 made the column."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'merchants_merchant' AND column_name = %s",
            [SHOWN_COLUMN],
        )
        if cursor.fetchone() is None:
            return False
        changed = False
        trigger, *trigger_sql = trigger_function()
        for function, (body, create) in (
            (trigger, trigger_sql),
            (ANSWER_FUNCTION, answer_function()),
        ):
            installed = installed_function_body(cursor, function)
            if installed != body:
                cursor.execute(create)
                changed = True
                # A new trigger renders the rows once its migration has made it.
                if function == trigger and installed is not None:
                    cursor.execute(f"UPDATE merchants_merchant SET {SHOWN_COLUMN} = ''")  # noqa: S608
    return changed


def sync_after_migrate(sender, *, using: str, **kwargs) -> None:
    sync(using=using)
