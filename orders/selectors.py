from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from geomarket.accounts.roles import is_operator
from orders.models import REVENUE_STATUSES, Order, OrderStatus, OrderStatusChange


def orders_visible_to(*, user) -> QuerySet[Order]:
    """Customers see their own orders, owners their merchant's, couriers those assigned
    to them, operators all; one user may hold several of these roles."""
    if is_operator(user):
        return Order.objects.all()
    return Order.objects.filter(Q(buyer=user) | Q(merchant__owner=user) | Q(courier__user=user))


def _with_details(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.select_related("merchant", "delivery_address").prefetch_related("items")


def order_list(
    *,
    user,
    status: str | None = None,
    merchant_id: int | None = None,
    created_after=None,
    created_before=None,
) -> QuerySet[Order]:
    orders = orders_visible_to(user=user)
    if status:
        orders = orders.filter(status=status)
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    if created_after is not None:
        orders = orders.filter(created_at__gte=created_after)
    if created_before is not None:
        orders = orders.filter(created_at__lte=created_before)
    return _with_details(orders).order_by("-created_at", "-id")


def order_detail(*, user, order_id: int) -> Order | None:
    history = Prefetch("history", queryset=OrderStatusChange.objects.order_by("created_at", "id"))
    return (
        _with_details(orders_visible_to(user=user))
        .prefetch_related(history)
        .filter(pk=order_id)
        .first()
    )


def merchant_order_list(*, merchant_id: int) -> QuerySet:
    return (
        Order.objects.filter(merchant_id=merchant_id)
        .annotate(total_items=Sum("items__quantity"))
        .order_by("-created_at", "-id")
        .values("id", "status", "created_at", "total_items", "total")
    )


def order_stats(*, merchant_id: int | None) -> dict:
    orders = Order.objects.all()
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    counts = dict(orders.values_list("status").annotate(n=Count("id")).order_by())
    revenue = orders.filter(status__in=REVENUE_STATUSES).aggregate(total=Sum("total"))["total"]
    return {
        "by_status": {status.value: counts.get(status.value, 0) for status in OrderStatus},
        "orders": sum(counts.values()),
        "revenue": revenue or Decimal("0.00"),
    }
