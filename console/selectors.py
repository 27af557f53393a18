"""What the console shows a caller: everything to an operator, its own merchant's to an
owner. Each part is read through the selectors of the app that owns it."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from analytics.selectors import DateRange, merchants_report, revenue_report
from delivery.selectors import couriers_on_map
from geomarket.accounts.roles import is_operator, user_merchant_id
from geomarket.accounts.selectors import Credential, user_active
from geomarket.demand import unserved_cells
from orders.selectors import orders_on_map

REVENUE_DAYS = 30
TOP_MERCHANTS = 5
# The busiest cells of the heat map, at most: every open console reads them every 2 s, and
# searches at distinct points anywhere would otherwise grow the answer without end.
UNSERVED_CELLS = 2000


@dataclass(frozen=True)
class ConsoleScope:
    operator: bool
    # The owner's merchant; None for an operator, who sees every merchant.
    merchant_id: int | None


def console_scope(user) -> ConsoleScope | None:
    """Whom the console is for: operators and merchant owners; None for anyone else."""
    if is_operator(user):
        return ConsoleScope(operator=True, merchant_id=None)
    merchant_id = user_merchant_id(user)
    if merchant_id is None:
        return None
    return ConsoleScope(operator=False, merchant_id=merchant_id)


def console_scope_now(*, user_id: int, credential: Credential) -> ConsoleScope | None:
    """`console_scope` of the user `user_id` as it stands now, for a console stream opened
    earlier on `credential`: None once it may not authenticate (its session signed out
    included) or is neither operator nor owner."""
    user = user_active(user_id=user_id, credential=credential)
    return None if user is None else console_scope(user)


def console_data(*, scope: ConsoleScope) -> dict:
    today = timezone.now().date()
    month = DateRange(date_from=today - timedelta(days=REVENUE_DAYS - 1), date_to=today)
    merchants = merchants_report(range_=month)
    if not scope.operator:
        merchants = [row for row in merchants if row["merchant_id"] == scope.merchant_id]
    return {
        "operator": scope.operator,
        "merchant_id": scope.merchant_id,
        "couriers": couriers_on_map(merchant_id=scope.merchant_id),
        "orders": orders_on_map(merchant_id=scope.merchant_id),
        "revenue": [
            {"period": row["period"], "revenue": row["revenue"]}
            for row in revenue_report(range_=month, merchant_id=scope.merchant_id)
        ],
        # Where customers found nobody: an operator's only. An owner sees only its own
        # merchant, zones and orders (API.md), and anyone may become an owner: a cell of
        # 250 m with one search in it could tell where one customer lives.
        "unserved": unserved_cells(most=UNSERVED_CELLS) if scope.operator else [],
        "top_merchants": [
            {"merchant_id": row["merchant_id"], "name": row["name"], "revenue": row["revenue"]}
            for row in merchants[:TOP_MERCHANTS]
        ],
    }
