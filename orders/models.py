from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import F, Q


class OrderStatus(models.TextChoices):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    PREPARING = "preparing"
    READY = "ready"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    FAILED = "failed"
    RETURNED = "returned"


class FailureReason(models.TextChoices):
    CUSTOMER_ABSENT = "customer_absent"
    ADDRESS_NOT_FOUND = "address_not_found"
    REFUSED = "refused"
    DAMAGED = "damaged"
    OTHER = "other"


class IncidentKind(models.TextChoices):
    LATE = "late"
    DAMAGED = "damaged"
    MISSING_ITEM = "missing_item"
    ADDRESS_PROBLEM = "address_problem"
    OTHER = "other"


# Orders a courier is (or will be) carrying: they count against the courier's capacity.
ACTIVE_DELIVERY_STATUSES = ("confirmed", "preparing", "ready", "picked_up")
WAITING_STATUSES = ("confirmed", "preparing", "ready")
# Orders waiting for a courier: dispatch assigns these and no others
# (`orders_waiting_lock`), and only these have courier candidates. The statuses as a list:
# the index below was migrated with one.
WAITING_FOR_COURIER = Q(courier__isnull=True, status__in=list(WAITING_STATUSES))

# Who may see where an order's courier is, by the roles the caller holds towards the
# order: the statuses in which each role sees it, None for always. The one statement of
# the rule (API.md, "Live delivery"): tracking's answers and streams read it, and so does
# the console's map of a merchant's couriers; its test walks every role and status.
COURIER_VISIBLE_WHILE: dict[str, frozenset[str] | None] = {
    "customer": frozenset({OrderStatus.PICKED_UP}),
    "owner": frozenset({OrderStatus.READY, OrderStatus.PICKED_UP}),
    # The order's own courier.
    "courier": None,
    "operator": None,
}

# Orders whose money is real: revenue counts these, not rejected or cancelled ones.
REVENUE_STATUSES = (
    OrderStatus.CONFIRMED,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.PICKED_UP,
    OrderStatus.DELIVERED,
)


class Order(models.Model):
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="orders"
    )
    delivery_address = models.ForeignKey(
        "merchants.Address", on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    delivery_fee = models.DecimalField(max_digits=8, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    rejection_reason = models.CharField(max_length=64, blank=True, default="")
    shortages = models.JSONField(default=list, blank=True)
    courier = models.ForeignKey(
        "delivery.Courier", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The merchant's delivery slot the order was placed for (booked in merchants'
    # SlotBooking while the order is live); both null for an order to deliver now.
    slot_starts_at = models.DateTimeField(null=True, blank=True)
    slot_ends_at = models.DateTimeField(null=True, blank=True)
    # Handover: the code's keyed hash, set at `picked_up` when the merchant requires a code,
    # and the wrong tries counted under the order's row lock.
    handover_code_hash = models.CharField(max_length=128, blank=True, default="", db_default="")
    handover_failures = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Where the courier was when it said `delivered`, and how far that is from the address.
    delivered_location = models.PointField(geography=True, srid=4326, null=True, blank=True)
    delivered_distance_m = models.FloatField(null=True, blank=True)
    failure_reason = models.CharField(
        max_length=32, choices=FailureReason.choices, blank=True, default="", db_default=""
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(subtotal__gte=0) & Q(delivery_fee__gte=0) & Q(total__gte=0),
                name="order_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(slot_starts_at__isnull=True, slot_ends_at__isnull=True)
                | Q(slot_ends_at__gt=F("slot_starts_at")),
                name="order_slot_whole",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in OrderStatus]),
                name="order_status_known",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="order_merchant_created_idx"),
            models.Index(fields=["buyer", "-created_at"], name="order_buyer_created_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_created_idx"),
            # Operators list every order newest first, a page at a time.
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(
                fields=["courier", "status"],
                name="order_courier_active_idx",
                condition=Q(courier__isnull=False),
            ),
            # Analytics reads delivered orders by delivery time, overall and per merchant.
            models.Index(
                fields=["delivered_at"],
                name="order_delivered_at_idx",
                condition=Q(status="delivered"),
            ),
            models.Index(
                fields=["merchant", "delivered_at"],
                name="order_merchant_delivered_idx",
                condition=Q(status="delivered"),
            ),
            # Dispatch looks for waiting orders: not yet given to a courier, oldest first.
            models.Index(
                fields=["created_at", "id"],
                name="order_waiting_idx",
                condition=WAITING_FOR_COURIER,
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"


class OrderIncident(models.Model):
    """Something that went wrong with an order, as one of its parties reported it.
    Append-only: rows are never changed or deleted through the API."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    note = models.TextField(blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_role = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["order", "created_at"], name="order_incident_idx")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.kind}"


class OrderStatusTally(models.Model):
    """Changes to how many orders hold each status and the sum of their totals: the sums
    over all rows are exact at every snapshot, so operators' stats read a few rows, not
    every order. Rows are only ever added, by a statement trigger on every write to
    orders (migration 0006), so writers never wait on one another or deadlock on them;
    now and then a writer folds them into one row per status (`orders_tally_compact`)."""

    status = models.CharField(max_length=16)
    orders = models.BigIntegerField()
    total = models.DecimalField(max_digits=18, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.status}: {self.orders:+d}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.PROTECT, related_name="order_items"
    )
    title = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=999),
                name="order_item_quantity_range",
            ),
            models.UniqueConstraint(fields=["order", "product"], name="order_item_product_once"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.title}"


class OrderStatusChange(models.Model):
    """Every status an order took, who set it and when."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["order", "created_at"], name="order_history_idx")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} -> {self.to_status}"


class IdempotencyKey(models.Model):
    """The first answer to an `Idempotency-Key`, per user, kept for 24 hours."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


class OutboxMessage(models.Model):
    """A Celery task to send, written in the transaction of the change that causes it.

    The relay publishes pending messages to the broker; a broker outage only delays them.
    A published message is settled when its task has run (`settled_at`: `outbox_settle`,
    from Celery's signals in `orders.tasks`). Until then it is sent again after
    `OUTBOX_RESEND_SECONDS`, then after as long as it has been out (`outbox_resend`,
    `geomarket.resend`): Redis's transport drops a task a worker
    took off the queue (`BRPOP`) if the broker stops before the worker files it as
    unacknowledged. The tasks are idempotent, so a copy that was only slow runs for
    nothing.
    """

    task_name = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # Published and not settled: sent again once this time has come.
    resend_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["id"], name="outbox_pending_idx", condition=Q(published_at__isnull=True)
            ),
            models.Index(
                fields=["resend_at"],
                name="outbox_unsettled_idx",
                condition=Q(settled_at__isnull=True, resend_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.payload}"


class OrderNotification(models.Model):
    """One row per notification sent, so a task delivered twice sends once."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "kind"], name="order_notification_once")
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.kind}"
