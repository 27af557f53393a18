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


class DeliveryZonePart(models.Model):
    """A piece of an active zone's area for the coverage test, kept equal to the zones by
    database triggers (migration 0004) on every write path: services, admin, bulk
    loads and raw SQL alike.

    Testing `ST_Covers` on a zone's geography costs tens of microseconds; a point in a
    small planar piece costs about one. A zone becomes:
    - inner pieces (`on_edge` false): its planar area shrunk by `margin` degrees, cut into
      pieces of at most 16 vertices. `margin` exceeds the widest gap between an edge
      as a great-circle arc (what geography means) and as a straight line in degrees
      (what geometry means), so a point in an inner piece is covered in both senses.
    - edge pieces (`on_edge` true): each edge widened by `margin` on every side. A
      point in one may lie on either side of the true boundary, so the zone's own
      `ST_Covers` decides, exactly as before.
    A point in no piece is farther than `margin` outside the planar area, so outside the
    geodesic one. A zone the planar view cannot represent (across the antimeridian, or
    with arcs far from their chords) has one edge piece covering the globe.
    """

    zone = models.ForeignKey(
        DeliveryZone, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    # Copies of the zone's, so that the coverage scan reads no zone row.
    merchant_id = models.BigIntegerField()
    delivery_fee = models.DecimalField(max_digits=8, decimal_places=2)
    min_order_amount = models.DecimalField(max_digits=10, decimal_places=2)
    # Copies of the merchant's, kept by triggers on both tables (migration 0005), so that
    # delivering-to reads no merchant row for the ~1,500 zones covering a central point.
    merchant_location = models.PointField(geography=True, srid=4326, spatial_index=False)
    merchant_is_active = models.BooleanField()
    # Not a model field: the column merchant_unit, the location as a point on the unit
    # sphere in 3D, generated from merchant_location (migration 0006) for the
    # nearest-first walk of delivering-to.
    on_edge = models.BooleanField()
    # Planar (SRID 4326 geometry, not geography): pieces are tested as flat shapes.
    # Its GiST index, with merchant_unit, is made by migration 0006.
    shape = models.GeometryField(srid=4326, spatial_index=False)
