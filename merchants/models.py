import functools
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, IntegerRangeField, RangeOperators
from django.core.exceptions import ValidationError
from django.db.models import F, Q


def default_timezone() -> str:
    return settings.DEFAULT_MERCHANT_TIMEZONE


@functools.cache
def _known_timezones() -> frozenset[str]:
    """The IANA zone names `zoneinfo` knows. It lists every TZif file on its search path,
    and a system's tz directory holds some that IANA does not name, all in lower case:
    Debian's `localtime`, a link to the host's own zone (which PostgreSQL's host may not
    share), and `posixrules`. Every IANA name's parts begin with a capital letter
    (`Etc/GMT+5`, `UTC`, `America/Argentina/Buenos_Aires`)."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if all(part[:1].isascii() and part[:1].isupper() for part in name.split("/"))
        and name not in _READ_AS_FIXED_OFFSETS
    )


# IANA zones whose names PostgreSQL reads first as its abbreviations of fixed offsets
# (`pg_timezone_abbrevs`), though their clocks move in summer: every hour of a merchant in
# `CET` would be an hour off from April to October. A city's zone says the same.
_READ_AS_FIXED_OFFSETS = frozenset({"CET", "EET", "MET", "WET"})


def validate_timezone(value: str) -> None:
    """An IANA zone name that `zoneinfo` knows; PostgreSQL reads the same tz database, and
    would fail every statement on the merchant's hours for a name it does not know."""
    if value not in _known_timezones():
        # Not echoing the value: it may hold what no response can encode (a lone
        # surrogate, which DRF's own validator refuses beside this one).
        raise ValidationError("Unknown time zone.", code="unknown")


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
    # Whether an operator turned it off: then only an operator turns it on again, its owner
    # may not undo the moderation (`merchants.services`). False while active.
    deactivated_by_operator = models.BooleanField(default=False, db_default=False)
    # When true, `delivered` needs the 4-digit code the customer was given at pickup.
    require_handover_code = models.BooleanField(default=False, db_default=False)
    # The learned median of `ready - confirmed` over the last 28 days, refreshed by beat;
    # null while there are too few samples, and then ETAs use the default.
    learned_prep_time_s = models.PositiveIntegerField(null=True, blank=True)
    # The IANA zone its opening hours are read in (`merchants_open_periods`, migration
    # 0009). The database default serves rows written without Django (bulk loads).
    timezone = models.CharField(
        max_length=64, default=default_timezone, db_default="UTC", validators=[validate_timezone]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["name"], name="merchant_name_idx"),
            # The public list (active merchants by name) and its count, read from the index
            # alone: the rows are wide since they keep their open periods (migration 0011).
            models.Index(
                fields=["name", "id"], name="merchant_active_name_idx", condition=Q(is_active=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryZone(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="delivery_zones")
    name = models.CharField(max_length=100)
    area = models.MultiPolygonField(geography=True, srid=4326)
    # Not a model field: the column area_mercator, the area in Web Mercator generated from
    # it by PostgreSQL (migration 0017) for the vector tiles; no ORM read needs it.
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


class DeliveryZoneCell(models.Model):
    """What an active zone covers within one cell of a grid, for the coverage test, kept
    equal to the zones by database triggers (migration 0020) on every write path:
    services, admin, bulk loads, raw SQL and TRUNCATE alike.

    Testing `ST_Covers` on a zone's geography costs tens of microseconds. The grid's cells
    are 1/64 of a degree square (`CELLS_PER_DEGREE`, about 1.1 km wide and 1.7 km high in
    Berlin): a point's cell is `floor(64 * longitude), floor(64 * latitude)`, exact in
    binary floating point, so the grid is a partition key and no distance is ever taken
    in degrees. A zone has a row for each cell its `hull` meets, with:
    - `core`: the zone's planar area (SRID 4326 degrees) shrunk by `margin`, and `hull`:
      the same widened by `margin`, `margin` exceeding twice the widest gap between an
      edge as a great-circle arc (what geography means) and as a straight line in degrees
      (what geometry means). Every point of the core is covered, planar and geodesic; no
      point outside the hull is.
    - `covered`: the cell lies in the core entirely (an exact predicate of the cell's
      corners): every point of it is covered, and the walk tests nothing.
    - otherwise, `core` and `hull` clipped to the cell widened by a sixteenth of a cell
      (NULL: no core there; the widened cell within the hull). A point in the clipped core
      is covered: clipping rounds only near the core's boundary, `margin` inside the area.
      A point outside the clipped hull is not: a point of the cell is a sixteenth of a cell
      from where the clipping cut, and near the hull's own boundary, `margin` outside the
      area, none is covered. Between the two, the zone's own `ST_Covers` decides, exactly
      as before.
    A point on a cell's west or south side is in that cell; rows are made for the closed
    cell, so whichever cell a point falls in, its row answers for it. A cell without a row
    does not meet the hull: none of its points is covered. A zone the planar view cannot
    stand for (across the antimeridian, arcs far from their chords, or
    more than `MAX_CELLS` cells) has one row whose `cell` is every cell, and `ST_Covers`
    decides every point.
    """

    zone = models.ForeignKey(
        DeliveryZone,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    # Copies of the zone's, so that the coverage walk reads no zone row.
    merchant_id = models.BigIntegerField()
    delivery_fee = models.DecimalField(max_digits=8, decimal_places=2)
    min_order_amount = models.DecimalField(max_digits=10, decimal_places=2)
    # Copies of the merchant's, kept by triggers on both tables, so that delivering-to
    # reads no merchant row for the ~1,500 zones covering a central point.
    merchant_location = models.PointField(geography=True, srid=4326, spatial_index=False)
    merchant_is_active = models.BooleanField()
    # Not a model field: the column merchant_unit, the location as a point on the unit
    # sphere in 3D (`merchants_unit_vector`, migration 0006), generated from
    # merchant_location for the nearest-first walk of delivering-to; its GiST index, with
    # `cell`, is made by migration 0020.
    # The cell's key, `merchants_zone_cell` of its points, as a range of one key, or of
    # all of them for a zone tested everywhere.
    cell = IntegerRangeField()
    covered = models.BooleanField()
    # Planar (SRID 4326 geometry, not geography): tested as flat shapes.
    core = models.GeometryField(srid=4326, null=True, spatial_index=False)
    hull = models.GeometryField(srid=4326, null=True, spatial_index=False)

    class Meta:
        constraints = [
            # A zone's coverage of a point, for one zone (placing an order), is one row
            # lookup: its cell's or its everywhere row.
            models.UniqueConstraint(fields=["zone", "cell"], name="zone_cell_unique"),
        ]


class OpeningInterval(models.Model):
    """One weekly opening of a merchant, in its local wall-clock time: from `opens` on
    `weekday` (0 = Monday) to `closes`, on the next day when `closes` <= `opens`."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    weekday = models.SmallIntegerField()
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        indexes = [
            # Open-or-closed reads one merchant's intervals of one weekday.
            models.Index(fields=["merchant", "weekday", "opens"], name="opening_merchant_day_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="opening_weekday_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}: {self.weekday} {self.opens}-{self.closes}"


class Closure(models.Model):
    """A time a merchant with opening hours is closed whatever its hours say (holidays).
    PostgreSQL itself refuses two overlapping closures of one merchant."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    # Half-open: [starts_at, ends_at).
    period = DateTimeRangeField()
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            ExclusionConstraint(
                name="closure_no_overlap",
                expressions=[
                    ("merchant", RangeOperators.EQUAL),
                    ("period", RangeOperators.OVERLAPS),
                ],
            ),
            models.CheckConstraint(condition=Q(period__isempty=False), name="closure_not_empty"),
            # The open periods' bounds (migration 0014) read every period as [start, end).
            models.CheckConstraint(
                condition=Q(period__lower_inc=True, period__upper_inc=False),
                name="closure_half_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}: {self.period}"


# A slot plan's bounds (API.md), inclusive: the database's CHECK constraints and the API's
# fields (`merchants.serializers.SlotPlanSerializer`) are both made from these.
SLOT_PLAN_BOUNDS = {
    "slot_minutes": (10, 240),
    "capacity": (1, 1000),
    "lead_minutes": (0, 1440),
    "horizon_days": (1, 14),
}
LONGEST_SLOT = timedelta(minutes=SLOT_PLAN_BOUNDS["slot_minutes"][1])


class SlotPlan(models.Model):
    """How a merchant cuts its opening hours into delivery slots that orders book."""

    merchant = models.OneToOneField(
        Merchant, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    slot_minutes = models.SmallIntegerField()
    capacity = models.IntegerField()
    lead_minutes = models.SmallIntegerField()
    horizon_days = models.SmallIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(**{f"{name}__gte": low, f"{name}__lte": high}),
                name=f"slot_plan_{name}_range",
            )
            for name, (low, high) in SLOT_PLAN_BOUNDS.items()
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}: {self.slot_minutes} min x {self.capacity}"


class SlotBooking(models.Model):
    """The orders booked into one slot of a merchant, counted by the slot's window
    `[starts_at, ends_at)` as it was when they booked it: a plan or hours changed since
    cut other slots, and these bookings count against every one their window overlaps
    (`merchants.selectors.slot_bookings_overlapping_sql`). Booking is a conditional
    upsert, as stock is taken."""

    pk = models.CompositePrimaryKey("merchant_id", "starts_at", "ends_at")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    booked = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(booked__gte=0), name="slot_booked_non_negative"),
            # No longer than the longest slot: the rows that can overlap a slot start
            # less than that before it, which bounds the index range read.
            models.CheckConstraint(
                condition=Q(
                    ends_at__gt=F("starts_at"),
                    ends_at__lte=F("starts_at") + LONGEST_SLOT,
                ),
                name="slot_booking_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.starts_at}: {self.booked}"
