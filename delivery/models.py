from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q


class Vehicle(models.TextChoices):
    BIKE = "bike"
    SCOOTER = "scooter"
    CAR = "car"


class CourierStatus(models.TextChoices):
    OFFLINE = "offline"
    AVAILABLE = "available"
    BUSY = "busy"


class Courier(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="courier"
    )
    name = models.CharField(max_length=100)
    vehicle = models.CharField(max_length=16, choices=Vehicle.choices, default=Vehicle.BIKE)
    status = models.CharField(
        max_length=16, choices=CourierStatus.choices, default=CourierStatus.OFFLINE
    )
    location = models.PointField(geography=True, srid=4326, null=True, blank=True)
    location_updated_at = models.DateTimeField(null=True, blank=True)
    # When the device took the current point, by its own clock: what a later ping is
    # compared with. location_updated_at is that time but never past the server's, so a
    # ping taken a few seconds later by a clock running ahead can still be the older one.
    location_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    capacity = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(capacity__gte=1), name="courier_capacity_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in CourierStatus]),
                name="courier_status_known",
            ),
            models.CheckConstraint(
                condition=Q(vehicle__in=[choice.value for choice in Vehicle]),
                name="courier_vehicle_known",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "location_updated_at"], name="courier_status_idx")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.vehicle})"


class GeofenceCrossing(models.Model):
    """A geofence event already recorded for an order: each fires once per order, however
    many pings fall inside it. Written by the ping's own statement."""

    order_id = models.BigIntegerField()
    type = models.CharField(max_length=40)
    courier_id = models.BigIntegerField()
    crossed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order_id", "type"], name="geofence_once_per_order")
        ]

    def __str__(self) -> str:
        return f"{self.type} order {self.order_id}"
