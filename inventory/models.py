from django.db import models
from django.db.models import F, Q

# The most stock a client may set, and what an adjustment may take a product to (the
# column, an integer, would hold no more than about twice this). Units an order gives back
# (cancelled, returned) are real stock and are all kept, even past this: refusing them
# would refuse the cancellation, and dropping them would lose goods on the shelf.
MAX_QUANTITY = 1_000_000_000

# Low on stock: at or below its threshold. The index below, the `low_stock` filter and the
# daily summary read it; the low-stock event is its crossing (`inventory.services`).
LOW_STOCK = Q(quantity__lte=F("low_stock_threshold"))


class Inventory(models.Model):
    """The stock of one product. `merchant` repeats the product's merchant so per-merchant
    listings need no join; a composite foreign key (migration 0002) keeps it honest."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="inventory"
    )
    product = models.OneToOneField(
        "catalog.Product", on_delete=models.CASCADE, related_name="inventory"
    )
    quantity = models.IntegerField(default=0)
    low_stock_threshold = models.IntegerField(default=5)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inventory"
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=0), name="inventory_quantity_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0), name="inventory_threshold_non_negative"
            ),
            models.UniqueConstraint(
                fields=["merchant", "product"], name="inventory_merchant_product_unique"
            ),
        ]
        indexes = [
            models.Index(
                F("merchant"),
                F("quantity"),
                name="inventory_low_stock_idx",
                condition=LOW_STOCK,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.quantity}"


class InventoryAdjustment(models.Model):
    """An audit trail of manual stock changes made through `inventory/{id}/adjust/`."""

    inventory = models.ForeignKey(Inventory, on_delete=models.CASCADE, related_name="adjustments")
    delta = models.IntegerField()
    quantity_after = models.IntegerField()
    reason = models.CharField(max_length=200, blank=True, default="")
    actor = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["inventory", "-created_at"], name="adjustment_inv_created_idx")
        ]

    def __str__(self) -> str:
        return f"{self.inventory_id}: {self.delta:+d}"


class LowStockReport(models.Model):
    """A merchant's low-stock items on one day, as the daily summary found them."""

    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.CASCADE, related_name="low_stock_reports"
    )
    day = models.DateField()
    items = models.JSONField(default=list)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "day"], name="low_stock_report_once_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day}: {len(self.items)} items"
