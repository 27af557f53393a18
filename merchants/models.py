from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q


class Address(models.Model):
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    country = models.CharField(max_length=100, blank=True, default="")
    location = models.PointField(geography=True, srid=4326)

    class Meta:
        verbose_name_plural = "addresses"

    def __str__(self) -> str:
        return f"{self.line1}, {self.postal_code} {self.city}"


class Merchant(models.Model):
    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="merchant"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    categories = models.ManyToManyField(
        "catalog.ProductCategory", blank=True, related_name="merchants"
    )
    address = models.ForeignKey(Address, on_delete=models.PROTECT, related_name="+")
    # A copy of address.location, kept equal by database triggers (migration 0002), so that
    # ranking by distance reads one table and one GiST index.
    location = models.PointField(geography=True, srid=4326)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["name"], name="merchant_name_idx")]

    def __str__(self) -> str:
        return self.name


class DeliveryZone(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="delivery_zones")
    name = models.CharField(max_length=100)
    area = models.MultiPolygonField(geography=True, srid=4326)
    delivery_fee = models.DecimalField(max_digits=8, decimal_places=2)
    min_order_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        indexes = [
            # Placing an order looks up one merchant's active zones by fee; a merchant has
            # few, so this beats the citywide GiST index on the area.
            models.Index(
                fields=["merchant", "delivery_fee", "id"],
                name="zone_merchant_fee_idx",
                condition=Q(is_active=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(delivery_fee__gte=0), name="zone_fee_non_negative"),
            models.CheckConstraint(
                condition=Q(min_order_amount__gte=0), name="zone_min_order_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}: {self.name}"
