"""The one order in which inventory rows are locked.

Every path that locks more than one inventory row in a transaction takes them through
`inventory_lock_for_update`, in id order: taking and returning an order's stock, and,
ahead of their cascades, deleting a merchant and the admin's bulk deletes. Two such
transactions then queue on the first row they share, instead of each holding a row the
other waits for: a deadlock, which PostgreSQL breaks by failing one of them. A path that
locks a single row (a one-line order's conditional UPDATE, `inventory_adjust`) holds no
other inventory row while it waits, so it cannot close such a cycle.
"""

import functools
from collections.abc import Sequence

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import BigIntegerField, F, Lookup, QuerySet, Value
from django.db.models.functions import Cast

from geomarket.sql import CompiledQuery
from inventory.models import Inventory

# Stands in for the product ids in the compiled lock: never a list of real ids.
_PRODUCT_IDS_STAND_IN = [-1]


class _EqualsAny(Lookup):
    """`lhs = ANY(rhs)`: one array parameter for any number of ids, so the SQL text does
    not change with their number and can be compiled once."""

    lookup_name = "equals_any"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def inventory_lock_for_update(*, product_ids: Sequence[int] | QuerySet) -> QuerySet[Inventory]:
    """The inventory rows of `product_ids` (ids, or a queryset of one column of them),
    locked in id order by the query that reads them, or by the statement they are a
    subquery of."""
    if isinstance(product_ids, QuerySet):
        ids = ArraySubquery(product_ids)
    else:
        ids = Cast(Value(list(product_ids)), ArrayField(BigIntegerField()))
    return (
        Inventory.objects.filter(_EqualsAny(F("product_id"), ids))
        .order_by("pk")
        .select_for_update(of=("self",))
    )


@functools.cache
def _locked_rows_compiled() -> CompiledQuery:
    queryset = inventory_lock_for_update(product_ids=_PRODUCT_IDS_STAND_IN).values_list(
        "pk", "product_id", "quantity"
    )
    return CompiledQuery(queryset, slots={"product_ids": _PRODUCT_IDS_STAND_IN})


def inventory_rows_lock_sql() -> str:
    """The statement of `inventory_rows_lock` for a list of ids, its one parameter named
    `%(product_ids)s` (an array), to sit inside a statement that acts on the rows it locks:
    it returns them as (pk, product_id, quantity), locked in id order."""
    return _locked_rows_compiled().named_sql()


def inventory_rows_lock(*, product_ids: Sequence[int] | QuerySet) -> list[tuple[int, int, int]]:
    """Lock the inventory rows of `product_ids` now, as `inventory_lock_for_update` does,
    and return them as (id, product_id, quantity).

    Order placement locks rows on its hottest path: for a list of ids the queryset is
    compiled once (building it costs more CPU than the statement), not per order, and
    the statement is prepared on the connection.
    """
    if isinstance(product_ids, QuerySet):
        locked = inventory_lock_for_update(product_ids=product_ids)
        return list(locked.values_list("pk", "product_id", "quantity"))
    compiled = _locked_rows_compiled()
    with connection.prepared_cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params(product_ids=list(product_ids)))
        return cursor.fetchall()
