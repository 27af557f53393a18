from django.contrib import admin

from orders.models import (
    IdempotencyKey,
    Order,
    OrderItem,
    OrderNotification,
    OrderStatusChange,
    OutboxMessage,
)


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    raw_id_fields = ("product",)
    extra = 0


class OrderStatusChangeInline(admin.TabularInline):
    model = OrderStatusChange
    raw_id_fields = ("actor",)
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "merchant", "buyer", "total", "created_at", "delivered_at")
    list_filter = ("status",)
    search_fields = ("id", "merchant__name", "buyer__username")
    raw_id_fields = ("buyer", "merchant", "delivery_address")
    list_select_related = ("merchant", "buyer")
    inlines = [OrderItemInline, OrderStatusChangeInline]


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
