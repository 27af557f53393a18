"""The project's backend, emptying tables between transactional tests with `DELETE`.

Django empties every table after each transactional test with one `TRUNCATE`, which gives
each of the three dozen tables and their indexes new files: about half a second, for
tables that hold a few rows. `DELETE` of those rows takes milliseconds. The foreign keys
Django makes are deferred, so they would take the tables in any order; but triggers do
run, and some read the rows a row refers to (removing a merchant's categories renders
the merchant's `shown_json` again, from its owner and address). So each table is emptied
before the tables it refers to, whatever order Django lists them in (a set's, which
differs from process to process). Some triggers file rows in tables already emptied (a
deleted order adds its change to the status tally), so a second pass empties what the
first filed. Content types and permissions are kept (see `KEPT`). Sequences keep counting, as
they do after Django's own `TRUNCATE`; a test that asks for them to restart gets Django's
statement.

Test databases are created and dropped on PostgreSQL itself (DATABASE_DIRECT_URL), past a
transaction pooler, and dropped WITH (FORCE): a pooler keeps idle server sessions on a
database it has served, which a plain DROP DATABASE waits for and then refuses.
"""

import functools
from contextlib import contextmanager

from django.apps import apps
from django.conf import settings
from django.contrib.gis.db.backends.postgis.operations import PostGISOperations
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql.creation import DatabaseCreation as PostgreSQLCreation

from geomarket.db.postgis.base import DatabaseWrapper as ProjectWrapper

# Rows that migrations make and no test changes. Emptied, the flush's `post_migrate` would
# make them again, two hundred inserts and commits for each test; kept, it finds them.
KEPT = {"django_content_type", "auth_permission"}


class DatabaseOperations(PostGISOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences:
            return super().sql_flush(
                style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        deletes = [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};"
            for table in _referring_first(tables)
            if table not in KEPT
        ]
        return deletes + deletes


@functools.cache
def _refers_to() -> dict[str, set[str]]:
    """Each model's table, with the tables its foreign keys refer to."""
    refers_to: dict[str, set[str]] = {}
    for model in apps.get_models(include_auto_created=True):
        refers_to.setdefault(model._meta.db_table, set()).update(
            field.related_model._meta.db_table
            for field in model._meta.concrete_fields
            if field.is_relation and field.related_model is not None
        )
    return refers_to


def _referring_first(tables: list[str]) -> list[str]:
    """`tables`, each before every table its foreign keys refer to (by the models), the
    rest in name order: one order in every process."""
    refers_to = _refers_to()
    referred_first: list[str] = []
    seen: set[str] = set()

    def visit(table: str) -> None:
        if table not in seen:
            seen.add(table)
            for target in sorted(refers_to.get(table, ())):
                visit(target)
            referred_first.append(table)

    for table in sorted(tables):
        visit(table)
    wanted = set(tables)
    return [table for table in reversed(referred_first) if table in wanted]


class DatabaseCreation(PostgreSQLCreation):
    def _destroy_test_db(self, test_database_name, verbosity):
        self.connection.close_pool()
        with self._nodb_cursor() as cursor:
            name = self.connection.ops.quote_name(test_database_name)
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")


class DatabaseWrapper(ProjectWrapper):
    ops_class = DatabaseOperations
    creation_class = DatabaseCreation

    @contextmanager
    def _nodb_cursor(self):
        direct = settings.DATABASE_DIRECT
        address = {key: direct[key] for key in ("HOST", "PORT", "USER", "PASSWORD")}
        nodb = self.__class__(
            {**self.settings_dict, **address, "NAME": "postgres"}, alias=NO_DB_ALIAS
        )
        try:
            with nodb.cursor() as cursor:
                yield cursor
        finally:
            nodb.close()
