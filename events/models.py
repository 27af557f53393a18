from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    ORDER_PLACED = "order.placed"
    ORDER_REJECTED = "order.rejected"
    ORDER_STATUS_CHANGED = "order.status_changed"
    ORDER_ASSIGNED = "order.assigned"
    COURIER_ARRIVED_AT_MERCHANT = "courier.arrived_at_merchant"
    COURIER_ARRIVING = "courier.arriving"
    INVENTORY_LOW_STOCK = "inventory.low_stock"


def unknown_event_types(names: list[str]) -> list[str]:
    return sorted(set(names) - set(EventType.values))


class Event(models.Model):
    """Something that happened, written in the transaction of the change it describes.

    The row is its own outbox: `published_at` stays empty until the relay has handed its
    webhook deliveries to the broker, so a broker outage delays them and loses none.
    `merchant_id` and `order_id` are plain numbers, not foreign keys: the feed keeps
    what happened after the order or merchant is gone.
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=40, choices=EventType.choices)
    created_at = models.DateTimeField()
    merchant_id = models.BigIntegerField()
    order_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict)
    published_at = models.DateTimeField(null=True, blank=True)
    # The event's place in the feed, given once it has committed
    # (`events_feed_positions_assign`), in the order events commit. Ids come from a
    # sequence in insert order: a transaction still running may hold a lower id than one
    # that committed, and a feed walked by id would pass it for good.
    feed_position = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["feed_position"], name="event_feed_position_unique"),
        ]
        indexes = [
            models.Index(fields=["merchant_id", "feed_position"], name="event_merchant_feed_idx"),
            models.Index(
                fields=["id"],
                name="event_unpositioned_idx",
                condition=Q(feed_position__isnull=True),
            ),
            models.Index(
                fields=["id"], name="event_unpublished_idx", condition=Q(published_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.type}"


class WebhookEndpoint(models.Model):
    """Where a merchant's (or, with no merchant, every merchant's) events are sent, for as
    long as the user who created it may read them (`events.selectors.ENDPOINT_RECEIVES`)."""

    merchant = models.ForeignKey(
        "merchants.Merchant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
    )
    # Whose right to the events the endpoint takes them by. Null only for endpoints of
    # every merchant created before it was recorded (migration 0010 gave each merchant's
    # its owner); they take them as before. Protected: deleting the user would delete a
    # merchant's endpoints, their secrets and their history with it, unasked; deactivating
    # it stops them, and they are taken over by turning them on.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    url = models.URLField(max_length=2000)
    # Empty: every type.
    event_types = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    failure_count = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["merchant"], name="webhook_active_merchant_idx", condition=Q(is_active=True)
            )
        ]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One attempt to deliver an event to an endpoint."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_delivery_recent_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.event_id} #{self.attempt}"


class WebhookPending(models.Model):
    """A delivery owed to an endpoint: an event's first attempt, or a retry.

    Written with what makes it owed: the first attempts when the relay publishes the event
    (`events_publish`), a retry in the transaction that records the failed attempt. It is
    deleted only in the transaction that records the attempt it stands for, so no broker
    fault loses it. Redis's transport can: a worker's `BRPOP` takes a task off the queue
    before it files the task as unacknowledged, and a broker stopped between the two drops
    it for good. So each hand-over (`webhook_deliveries_publish`) sets the row due again
    `WEBHOOK_RESEND_SECONDS` later, and a task that never ran is sent again then. Of the
    copies that reach workers, the first claims the row and the others, finding it
    claimed or gone, send nothing.
    """

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    # The number this attempt will have.
    attempt = models.PositiveIntegerField()
    # Retries stop 24 h after it.
    first_attempt_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # When it was first handed to the broker: each hand-over waits twice as long as the
    # last before the next (geomarket.resend).
    handed_at = models.DateTimeField(null=True, blank=True)
    # Until then the task `claimed_by` (a Celery task id) is delivering it, and no other
    # copy may: a worker that died holds it no longer than that, but the broker's second
    # delivery of the same task, after such a death, takes it at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="webhook_pending_due_idx")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} {self.event_id} #{self.attempt} at {self.due_at}"
