"""The project's backend, emptying tables between transactional tests with `DELETE`.

Django empties every table after each transactional test with one `TRUNCATE`, which gives
each of the three dozen tables and their indexes new files: about half a second, for
tables that hold a few rows. `DELETE` of those rows takes milliseconds. The foreign keys
Django makes are deferred, so the order of the tables does not matter within the
transaction; triggers do run, and some file rows in tables already emptied (a deleted
order adds its change to the status tally), so a second pass empties what the first
filed. Content types and permissions are kept (see `KEPT`). Sequences keep counting, as
they do after Django's own `TRUNCATE`; a test that asks for them to restart gets Django's
statement.
"""

from django.contrib.gis.db.backends.postgis.operations import PostGISOperations

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
            for table in tables
            if table not in KEPT
        ]
        return deletes + deletes


class DatabaseWrapper(ProjectWrapper):
    ops_class = DatabaseOperations
