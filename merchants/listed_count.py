"""The number of merchants the public list shows unfiltered, kept in the database
(migration 0023), so that the list reads it instead of counting every active merchant on
each request (`merchants.selectors.LISTED_COUNT_TABLE`).

A statement trigger on merchants_merchant adds what each INSERT, UPDATE or DELETE
changes in the count, however the rows are written (save, bulk, raw SQL); TRUNCATE sets
it to 0. What it counts is the list's own rule (`merchants.selectors.listed_ids_sql`),
run over the statement's transition rows: a CTE named as the table stands in for it, so
the rule stays written once. The trigger function is generated from it: after each
`migrate`, a function the database holds otherwise is replaced and the count made again.

Only a statement that changes the count (a merchant listed or no longer listed) writes
its one row, and its transaction holds that row until it commits: writers of merchants
queue there only then, and the count is never lost by two of them at once.
"""

from django.db import connections, transaction

from geomarket.api.pagination import count_sql
from geomarket.shapes import installed_function_body
from merchants.selectors import LISTED_COUNT_TABLE, listed_ids_sql

MERCHANTS = "merchants_merchant"
FUNCTION = "merchants_listed_count_keep"


def _counted(rows: str) -> str:
    """The listed merchants among the transition rows `rows`, counted by the list's rule."""
    return f"(WITH {MERCHANTS} AS (SELECT * FROM {rows}) {count_sql(listed_ids_sql())})"  # noqa: S608


def _body() -> str:
    """The trigger function's body, as pg_proc.prosrc holds it."""
    return f"""
DECLARE
    change bigint := 0;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE {LISTED_COUNT_TABLE} SET merchants = 0;
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        change := change + {_counted("added")};
    END IF;
    IF TG_OP <> 'INSERT' THEN
        change := change - {_counted("removed")};
    END IF;
    IF change <> 0 THEN
        UPDATE {LISTED_COUNT_TABLE} SET merchants = merchants + change;
    END IF;
    RETURN NULL;
END;
"""  # noqa: S608 - fixed names and compiled SQL only


def recount_sql() -> str:
    """The statement counting the listed merchants again, from the table."""
    return f"UPDATE {LISTED_COUNT_TABLE} SET merchants = ({count_sql(listed_ids_sql())})"  # noqa: S608


def install(*, using: str = "default") -> bool:
    """Install the trigger function the code gives where the database holds another, and
    count again; True when it did. Nothing before migration 0023 made the count's table.
    The merchants are locked against writes meanwhile, so none is missed between the
    count and the function that keeps it."""
    body = _body()
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [LISTED_COUNT_TABLE])
        if not cursor.fetchone()[0] or installed_function_body(cursor, FUNCTION) == body:
            return False
        cursor.execute(f"LOCK TABLE {MERCHANTS} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql"
            f" AS $keep${body}$keep$"
        )
        cursor.execute(recount_sql())
    return True


def sync_after_migrate(sender, *, using: str, **kwargs) -> None:
    install(using=using)
