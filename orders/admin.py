from django.contrib import admin, messages
from django.db.models.constants import LOOKUP_SEP

from geomarket.errors import DomainError
from geomarket.maps.admin import MapAdmin
from orders.models import (
    IdempotencyKey,
    Order,
    OrderIncident,
    OrderItem,
    OrderNotification,
    OrderStatus,
    OrderStatusChange,
    OutboxMessage,
)
from orders.services import TRANSITIONS, order_transition
from orders.services.transitions import NEEDS_REASON


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderItemInline(_ReadOnlyInline):
    model = OrderItem
    raw_id_fields = ("product",)


class OrderStatusChangeInline(_ReadOnlyInline):
    model = OrderStatusChange
    raw_id_fields = ("actor",)


class OrderIncidentInline(_ReadOnlyInline):
    model = OrderIncident
    raw_id_fields = ("author",)
    fields = ("kind", "note", "author", "author_role", "created_at")
    readonly_fields = fields


def _transition_action(to_status: str):
    def action(modeladmin, request, queryset):
        moved = 0
        for order_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                order_transition(order_id=order_id, actor=request.user, to_status=to_status)
            except DomainError as exc:
                modeladmin.message_user(request, f"Order {order_id}: {exc.message}", messages.ERROR)
            else:
                moved += 1
        if moved:
            modeladmin.message_user(request, f"{moved} order(s) moved to {to_status}.")

    action.__name__ = f"mark_{to_status}"
    return admin.action(description=f"Move the selected orders to {to_status}")(action)


@admin.register(Order)
class OrderAdmin(MapAdmin):
    """Orders are read here; a status changes only through `order_transition`, one action
    per status an operator may set, so the admin keeps the API's rules: the allowed
    transitions, the stock a cancel gives back, the history and the answers it invalidates.
    An order's lines, totals and address are what the customer was charged for, and no one
    edits them."""

    list_display = (
        "id",
        "status",
        "merchant",
        "buyer",
        "total",
        "created_at",
        "delivered_at",
        "delivered_distance_m",
    )
    list_filter = ("status", "failure_reason")
    search_fields = ("id", "merchant__name", "buyer__username")
    list_select_related = ("merchant", "buyer")
    # The handover code's hash and salt are the server's alone; nobody reads them here.
    exclude = ("handover_code_hash",)
    inlines = [OrderItemInline, OrderStatusChangeInline, OrderIncidentInline]
    # A failed delivery needs its reason, which an action has no place to ask for.
    actions = [
        _transition_action(status)
        for status in OrderStatus
        if any(to == status for _, to in TRANSITIONS) and status not in NEEDS_REASON
    ]

    def lookup_allowed(self, lookup, value, request=None):
        # Nor filtered by: a prefix a query, `?handover_code_hash__startswith=`, reads it
        # out as surely as a column would.
        if lookup.split(LOOKUP_SEP, 1)[0] == "handover_code_hash":
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The change page opens read-only; the list's actions stay available.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderIncident)
class OrderIncidentAdmin(admin.ModelAdmin):
    """Incidents as their parties reported them: append-only, so read here and never
    written."""

    list_display = ("id", "order", "kind", "author_role", "author", "created_at")
    list_filter = ("kind", "author_role")
    search_fields = ("order__id", "note", "author__username")
    list_select_related = ("order", "author")
    raw_id_fields = ("order", "author")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "task_name", "created_at", "published_at", "attempts", "last_error")
    list_filter = ("task_name",)
    search_fields = ("task_name",)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "key", "order", "created_at")
    search_fields = ("key", "user__username")
    raw_id_fields = ("user", "order")


@admin.register(OrderNotification)
class OrderNotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "kind", "sent_at")
    list_filter = ("kind",)
    search_fields = ("order__id",)
    raw_id_fields = ("order",)
