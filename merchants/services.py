from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.gis.geos import MultiPolygon, Point
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone as django_timezone
from psycopg.types.range import Range

from geomarket.accounts.roles import is_operator
from geomarket.answer_cache import Namespace, versions_bump
from geomarket.errors import Conflict, DomainError, Forbidden
from geomarket.geo import AreaError, area_check, area_right_handed
from geomarket.hooks import hook_call
from geomarket.locks import transaction_lock, transaction_lock_sql
from geomarket.services import model_update, unique_claim
from merchants.models import (
    Address,
    Closure,
    DeliveryZone,
    Merchant,
    OpeningInterval,
    SlotBooking,
    SlotPlan,
    default_timezone,
)
from merchants.selectors import SLOT_AT_SQL, merchant_hours, slot_bookings_overlapping_sql

MAX_ZONE_AREA_KM2 = 5_000


# The fields of an address besides its location.
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")

# Creating an address, as the body of a CTE in another app's statement (orders records
# an order and its delivery address in one round trip): `WITH address AS
# ({ADDRESS_INSERT_SQL}) ...`. Named parameters: each of `ADDRESS_FIELDS`, and `point`,
# the location as EWKT. Returns the new address's `id`.
ADDRESS_INSERT_SQL = """
    INSERT INTO merchants_address (line1, line2, city, postal_code, country, location)
    VALUES (%(line1)s, %(line2)s, %(city)s, %(postal_code)s, %(country)s,
            %(point)s::geography)
    RETURNING id
"""


class MerchantAlreadyOwned(Forbidden):
    code = "merchant_already_owned"
    default_message = "This user already owns a merchant."


class MerchantDeactivatedByOperator(Forbidden):
    code = "merchant_deactivated_by_operator"
    default_message = (
        "An operator deactivated this merchant; only an operator can reactivate or delete it."
    )


def _hold_kept(*, held: bool, actor) -> None:
    """403 when `actor` would undo an operator's hold on a merchant (`held`): reactivate
    it, or delete it, which would let its owner start afresh with a new one."""
    if held and not is_operator(actor):
        raise MerchantDeactivatedByOperator()


def _deactivated_by_operator(*, is_active: bool, held: bool, actor) -> bool:
    """Whether a merchant that `actor` sets to `is_active` is then held inactive by an
    operator, `held` telling whether it was. An operator's deactivation holds against the
    owner: only an operator reactivates it, and the owner setting it inactive again keeps
    it held. A deactivation by anyone else (the owner) the owner may undo."""
    if is_active:
        _hold_kept(held=held, actor=actor)
        return False
    return held or is_operator(actor)


def _area_km2(area: MultiPolygon) -> float:
    """Geodesic area on the WGS84 spheroid, computed by PostGIS."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Area(ST_GeogFromWKB(%s))", [bytes(area.wkb)])
        (square_metres,) = cursor.fetchone()
    return square_metres / 1_000_000


def _validate_zone_area(area: MultiPolygon) -> None:
    """Every way of writing a zone (API, admin, console) comes through here, so an area is
    held to the same rules whichever way it was given."""
    try:
        area_check(area)
    except AreaError as exc:
        raise DomainError(str(exc), field="area") from exc
    if _area_km2(area) > MAX_ZONE_AREA_KM2:
        raise DomainError(
            f"A delivery zone may cover at most {MAX_ZONE_AREA_KM2} km².", field="area"
        )


@transaction.atomic
def merchant_create(
    *,
    owner,
    name: str,
    address: Address | dict[str, Any],
    description: str = "",
    phone: str = "",
    categories: Iterable[models.Model] = (),
    is_active: bool = True,
    require_handover_code: bool = False,
    timezone: str | None = None,
    actor=None,
) -> Merchant:
    """`address` is an existing address, or the fields of a new one; `categories` are
    catalog's product categories. `actor` is who creates it (None: no operator); an
    operator creating it inactive holds it so (`_deactivated_by_operator`)."""
    versions_bump(Namespace.MERCHANTS)
    owned = Merchant.objects.filter(owner=owner).exists
    if owned():
        raise MerchantAlreadyOwned()
    merchant_address = (
        address if isinstance(address, Address) else Address.objects.create(**address)
    )
    with unique_claim(taken=owned, refusal=MerchantAlreadyOwned()):
        merchant = Merchant.objects.create(
            owner=owner,
            name=name,
            description=description,
            phone=phone,
            address=merchant_address,
            location=merchant_address.location,
            is_active=is_active,
            deactivated_by_operator=_deactivated_by_operator(
                is_active=is_active, held=False, actor=actor
            ),
            require_handover_code=require_handover_code,
            timezone=timezone or default_timezone(),
        )
    merchant.categories.set(categories)
    return merchant


@transaction.atomic
def merchant_update(*, merchant: Merchant, data: dict[str, Any], actor=None) -> Merchant:
    """Apply a full or partial update; `address` is another address to move to, or fields
    of the current one to change (maybe only some). `actor` is who writes (None: no
    operator): only an operator reactivates a merchant an operator deactivated (403)."""
    if "timezone" in data:
        # Its slots are cut in its zone.
        _slots_change_lock(merchant_id=merchant.pk)
    versions_bump(Namespace.MERCHANTS)
    fields = dict(data)
    categories = fields.pop("categories", None)
    address = fields.pop("address", None)
    if isinstance(address, Address):
        fields["address"] = address
        fields["location"] = address.location
    elif address:
        model_update(instance=merchant.address, data=address)
        fields["location"] = merchant.address.location
    if "is_active" in fields:
        # Read from the row locked, as the update would lock it: a deactivation an
        # operator committed since the merchant was read is then seen, not undone.
        active, held = (
            Merchant.objects.select_for_update(no_key=True)
            .filter(pk=merchant.pk)
            .values_list("is_active", "deactivated_by_operator")
            .get()
        )
        fields["deactivated_by_operator"] = _deactivated_by_operator(
            is_active=fields["is_active"], held=held and not active, actor=actor
        )
    model_update(instance=merchant, data=fields)
    if categories is not None:
        merchant.categories.set(categories)
    if "timezone" in fields:
        # The kept periods are instants read from the hours in the merchant's zone (the
        # admin writes the zone here, apart from the hours).
        merchant_open_periods_refresh(merchant_ids=[merchant.pk])
    return merchant


# A merchant learns its preparation time (`learned_prep_time_s`) from the samples of its
# last 28 days, once it has 20 of them: fewer leave it to the default.
PREP_TIME_WINDOW = timedelta(days=28)
PREP_TIME_MIN_SAMPLES = 20

# Every merchant's median of the samples `{samples}` (rows of `merchant_id, seconds`, those
# since `%(since)s`), or NULL with too few, written where it differs from the kept one;
# answers the merchants changed. The rows are locked by id before they are written, the
# one order of every statement locking several merchants (`_OPEN_PERIODS_LOCK_SQL`).
_PREP_TIMES_LEARN_SQL = """
WITH learned AS (
    SELECT s.merchant_id,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds))::integer AS seconds
    FROM ({samples}) s
    WHERE {samples_of}
    GROUP BY s.merchant_id
    HAVING count(*) >= %(min_samples)s
), changed AS (
    SELECT mm.id, learned.seconds
    FROM merchants_merchant mm LEFT JOIN learned ON learned.merchant_id = mm.id
    WHERE mm.learned_prep_time_s IS DISTINCT FROM learned.seconds AND {merchants}
    ORDER BY mm.id
    FOR NO KEY UPDATE OF mm
)
UPDATE merchants_merchant m SET learned_prep_time_s = changed.seconds
FROM changed WHERE m.id = changed.id
RETURNING m.id
"""
# Every merchant (the hourly refresh), or one that has learned none yet (its first).
_EVERY_MERCHANT = {"samples_of": "true", "merchants": "true"}
_ONE_UNLEARNED = {
    "samples_of": "s.merchant_id = %(merchant)s",
    "merchants": "mm.id = %(merchant)s AND mm.learned_prep_time_s IS NULL",
}


@transaction.atomic
def merchant_prep_times_learn(*, samples_sql: str, first_of: int | None = None) -> list[int]:
    """Set every merchant's learned preparation time to the median of its samples over
    the last `PREP_TIME_WINDOW` when it has `PREP_TIME_MIN_SAMPLES` of them, else to
    NULL (the default), in one statement; returns the ids of the merchants changed.

    `first_of`: only that merchant, and only while it has learned none. Orders call it
    as one gets ready, so that a merchant shows its own time from its twentieth order
    on rather than after the next hourly refresh; refreshed on every `ready`, a learned
    time would make every merchant answer unreachable (`versions_bump`) as often as any
    order gets ready, the platform over.

    `samples_sql` is the SQL of the samples, from the app that keeps the orders' history:
    rows of `merchant_id, seconds` (one per order, from confirmed to ready), those of the
    orders ready since `%(since)s`."""
    scope = _EVERY_MERCHANT if first_of is None else _ONE_UNLEARNED
    with connection.cursor() as cursor:
        cursor.execute(
            _PREP_TIMES_LEARN_SQL.format(samples=samples_sql, **scope),
            {
                "since": django_timezone.now() - PREP_TIME_WINDOW,
                "min_samples": PREP_TIME_MIN_SAMPLES,
                "merchant": first_of,
            },
        )
        changed = [row[0] for row in cursor.fetchall()]
    if changed:
        # Merchants' answers show it (`prep_time_s`).
        versions_bump(Namespace.MERCHANTS)
    return changed


@transaction.atomic
def merchant_delete(*, merchant: Merchant, actor=None) -> None:
    """`actor` is who deletes (None: no operator): a merchant an operator holds inactive
    only an operator deletes (403). Its row is read locked against a deactivation being
    made, but not against orders' key-share locks: the delete's own lock on it comes
    after the stock rows', as orders take them."""
    held = (
        Merchant.objects.select_for_update(no_key=True)
        .filter(pk=merchant.pk)
        .values_list("deactivated_by_operator", flat=True)
        .first()
    )
    _hold_kept(held=bool(held), actor=actor)
    # Its products and their stock go with it. The cascade deletes the stock rows in
    # batches in an order of its own: lock them first in the one order of stock locks.
    versions_bump(Namespace.MERCHANTS, Namespace.CATALOG)
    hook_call("products_deleting", product_ids=merchant.products.values("pk"))
    address = merchant.address
    merchant.delete()
    address.delete()


def address_create(
    *,
    line1: str,
    city: str,
    postal_code: str,
    location: Point,
    line2: str = "",
    country: str = "",
) -> Address:
    # A new address belongs to no merchant yet, so no answer shows it.
    return Address.objects.create(
        line1=line1,
        line2=line2,
        city=city,
        postal_code=postal_code,
        country=country,
        location=location,
    )


@transaction.atomic
def address_update(*, address: Address, data: dict[str, Any]) -> Address:
    # It may be a merchant's address, shown with the merchant; its point is the merchant's
    # location (kept equal by a trigger).
    versions_bump(Namespace.MERCHANTS)
    return model_update(instance=address, data=data)


def address_delete(*, address: Address) -> None:
    # A merchant's address cannot be deleted (protected), so no answer shows this one.
    address.delete()


@transaction.atomic
def delivery_zone_create(
    *,
    merchant: Merchant,
    name: str,
    area: MultiPolygon,
    delivery_fee: Decimal,
    min_order_amount: Decimal = Decimal("0"),
    is_active: bool = True,
) -> DeliveryZone:
    versions_bump(Namespace.MERCHANTS)
    _validate_zone_area(area)
    return DeliveryZone.objects.create(
        merchant=merchant,
        name=name,
        area=area_right_handed(area),
        delivery_fee=delivery_fee,
        min_order_amount=min_order_amount,
        is_active=is_active,
    )


@transaction.atomic
def delivery_zone_update(*, zone: DeliveryZone, data: dict[str, Any]) -> DeliveryZone:
    versions_bump(Namespace.MERCHANTS)
    if "area" in data:
        _validate_zone_area(data["area"])
        data = {**data, "area": area_right_handed(data["area"])}
    return model_update(instance=zone, data=data)


@transaction.atomic
def delivery_zone_delete(*, zone: DeliveryZone) -> None:
    versions_bump(Namespace.MERCHANTS)
    zone.delete()


# --- opening hours, closures, slot plans ----------------------------------------------

MINUTES_A_DAY = 24 * 60
MINUTES_A_WEEK = 7 * MINUTES_A_DAY


# How a merchant's slots are cut (its plan, hours and time zone) is guarded by a lock of
# its own (`_slots_lock_name`): each order takes it shared to book a slot, and holds it
# until it commits; a change of the cut takes it exclusive before anything else, so it
# waits for the orders booking, and orders after it wait for it, then read the new cut.
# A booking counts the others overlapping its slot as its statement finds them, and the
# slots of one cut do not overlap: without the lock, an order of the old cut still
# uncommitted as the cut changed was missed by one of the new cut. Closures take no
# lock: they remove slots, never cut them otherwise.
#
# No wait goes round a cycle: an order takes the lock after everything else it waits
# for (its stock), then waits only for orders booking the same slot, which hold the lock
# too; a change holds nothing before it.
def _slots_lock_name(merchant_id: int) -> str:
    return f"merchants.slots:{merchant_id}"


def _slots_change_lock(*, merchant_id: int) -> None:
    transaction_lock(_slots_lock_name(merchant_id))


def _week_spans(weekly: Iterable[dict]) -> list[tuple[int, int]]:
    """Each interval as minutes of the local week `[start, end)`, `end` past the week's
    end for Sunday's intervals that run into Monday."""
    spans = []
    for interval in weekly:
        opens = interval["opens"].hour * 60 + interval["opens"].minute
        closes = interval["closes"].hour * 60 + interval["closes"].minute
        length = closes - opens if closes > opens else closes - opens + MINUTES_A_DAY
        start = interval["weekday"] * MINUTES_A_DAY + opens
        spans.append((start, start + length))
    return spans


def _refuse_overlaps(weekly: list[dict]) -> None:
    spans = sorted(_week_spans(weekly))
    # The week wraps: Sunday's late interval may reach into Monday's first.
    wrapped = [*spans, *((start + MINUTES_A_WEEK, end + MINUTES_A_WEEK) for start, end in spans)]
    reached = -1
    for start, end in wrapped:
        if start < reached:
            raise DomainError("Opening intervals must not overlap.", field="weekly")
        reached = max(reached, end)


# How far the open periods kept on each merchant reach (migration 0011): a day back, for
# instants just past, and 16 days on, so that a next opening's 14 days stay inside for
# two days after a refresh, which the beat task makes daily.
OPEN_PERIODS_BEHIND = timedelta(days=1)
OPEN_PERIODS_AHEAD = timedelta(days=16)
# The beat task refreshes what reaches less far ahead than this.
OPEN_PERIODS_FRESH_AHEAD = timedelta(days=15)

_OPEN_PERIODS_LOCK_SQL = {
    "some": """
        SELECT id FROM merchants_merchant WHERE id = ANY(%(ids)s)
        ORDER BY id FOR NO KEY UPDATE""",
    "stale": """
        SELECT id FROM merchants_merchant
        WHERE open_periods_span IS NULL OR upper(open_periods_span) < %(fresh_until)s
        ORDER BY id FOR NO KEY UPDATE SKIP LOCKED""",
}
_OPEN_PERIODS_REFRESH_SQL = """
UPDATE merchants_merchant
SET open_periods = merchants_open_periods(id, timezone, %(t0)s, %(t1)s),
    open_periods_span = tstzrange(%(t0)s, %(t1)s)
WHERE id = ANY(%(ids)s)
"""


@transaction.atomic
def merchant_open_periods_refresh(*, merchant_ids: Iterable[int] | None = None) -> int:
    """Keep on the merchants (those whose kept periods reach too short a way ahead, when
    None) what `merchants_open_periods` answers from a day ago to 16 days on; returns how
    many. No answer changes, so no cached one is invalidated.

    The merchants are locked before their periods are computed, in a statement of its own:
    a write to a merchant's hours refreshes its periods in its own transaction, so it
    waits for this one to commit, then writes periods from its own hours. Computed in the
    statement that locks, a merchant whose hours were written meanwhile would be given
    periods from the hours its snapshot saw."""
    now = django_timezone.now()
    with connection.cursor() as cursor:
        if merchant_ids is None:
            cursor.execute(
                _OPEN_PERIODS_LOCK_SQL["stale"], {"fresh_until": now + OPEN_PERIODS_FRESH_AHEAD}
            )
        else:
            cursor.execute(_OPEN_PERIODS_LOCK_SQL["some"], {"ids": list(merchant_ids)})
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            cursor.execute(
                _OPEN_PERIODS_REFRESH_SQL,
                {"ids": ids, "t0": now - OPEN_PERIODS_BEHIND, "t1": now + OPEN_PERIODS_AHEAD},
            )
    return len(ids)


@transaction.atomic
def merchant_hours_replace(*, merchant: Merchant, timezone: str, weekly: list[dict]) -> dict:
    """The merchant's zone and whole week, in place of what it had. Each interval of
    `weekly` is `{"weekday": 0..6, "opens": time, "closes": time}`. Returns the hours as
    written (`merchant_hours`), read before the commit while the update's lock on the
    merchant's row holds other writers of its week back: read after, the answer could
    be another writer's week."""
    _refuse_overlaps(weekly)
    _slots_change_lock(merchant_id=merchant.pk)
    versions_bump(Namespace.MERCHANTS)
    Merchant.objects.filter(pk=merchant.pk).update(timezone=timezone)
    merchant.timezone = timezone
    OpeningInterval.objects.filter(merchant=merchant).delete()
    OpeningInterval.objects.bulk_create(
        OpeningInterval(merchant=merchant, **interval)
        for interval in sorted(weekly, key=lambda i: (i["weekday"], i["opens"]))
    )
    merchant_open_periods_refresh(merchant_ids=[merchant.pk])
    return merchant_hours(merchant=merchant)


class ClosureOverlaps(DomainError):
    code = "closure_overlaps"
    default_message = "The closure overlaps another closure of the merchant."


@transaction.atomic
def closure_create(
    *, merchant: Merchant, starts_at: datetime, ends_at: datetime, reason: str = ""
) -> Closure:
    if ends_at <= starts_at:
        raise DomainError("ends_at must be after starts_at.", field="ends_at")
    versions_bump(Namespace.MERCHANTS)
    try:
        # PostgreSQL's exclusion constraint decides, so two concurrent overlapping
        # closures cannot both be written.
        with transaction.atomic():
            closure = Closure.objects.create(
                merchant=merchant, period=Range(starts_at, ends_at, "[)"), reason=reason
            )
    except IntegrityError as exc:
        if getattr(exc.__cause__.diag, "constraint_name", None) == "closure_no_overlap":
            raise ClosureOverlaps(field="starts_at") from exc
        raise
    merchant_open_periods_refresh(merchant_ids=[merchant.pk])
    return closure


@transaction.atomic
def closure_delete(*, closure: Closure) -> None:
    versions_bump(Namespace.MERCHANTS)
    closure.delete()
    merchant_open_periods_refresh(merchant_ids=[closure.merchant_id])


@transaction.atomic
def slot_plan_set(
    *, merchant: Merchant, slot_minutes: int, capacity: int, lead_minutes: int, horizon_days: int
) -> SlotPlan:
    _slots_change_lock(merchant_id=merchant.pk)
    versions_bump(Namespace.MERCHANTS)
    plan, _ = SlotPlan.objects.update_or_create(
        merchant=merchant,
        defaults={
            "slot_minutes": slot_minutes,
            "capacity": capacity,
            "lead_minutes": lead_minutes,
            "horizon_days": horizon_days,
        },
    )
    return plan


@transaction.atomic
def slot_plan_delete(*, merchant: Merchant) -> None:
    _slots_change_lock(merchant_id=merchant.pk)
    versions_bump(Namespace.MERCHANTS)
    SlotPlan.objects.filter(merchant=merchant).delete()


# --- slot bookings ----------------------------------------------------------------------


class SlotNotOffered(DomainError):
    code = "slot_not_offered"
    default_message = "This is not the start of one of the merchant's current slots."


class SlotFull(Conflict):
    code = "slot_full"
    default_message = "This slot is fully booked."


# Books one order into merchant `%(merchant_id)s`'s slot starting at `%(slot_starts_at)s`
# if it is one of its current slots (`SLOT_AT_SQL`, the question the order's context
# read asked) and has room: one row of the slot's end and, NULL when it is full, the
# count booked in its window's row. Room is the capacity less every booking whose window
# overlaps the slot's (`slot_bookings_overlapping_sql`), its own row's and those of
# windows cut by an earlier plan or earlier hours (`other`). The slot's own row is the
# one concurrent bookings of it write: inserting with ON CONFLICT waits for a concurrent
# booking of the same slot and then tests the row as that booking left it, with the
# others. Those are read as the statement found them: the current slots do not overlap
# one another, so no concurrent booking adds to them, nor one of an old cut, committed
# before the cut changed (`_slots_lock_name`); a concurrent cancel only frees room.
_SLOT_OVERLAPPING = slot_bookings_overlapping_sql(
    m="%(merchant_id)s", starts_at="%(slot_starts_at)s::timestamptz", ends_at="slot.ends_at"
)
_SLOT_BOOK_SQL = f"""
WITH slot AS ({SLOT_AT_SQL}), other AS (
    SELECT coalesce(sum(b.booked), 0) AS booked
    FROM slot JOIN merchants_slotbooking b ON {_SLOT_OVERLAPPING}
     AND (b.starts_at, b.ends_at) <> (%(slot_starts_at)s::timestamptz, slot.ends_at)
), booking AS (
    INSERT INTO merchants_slotbooking (merchant_id, starts_at, ends_at, booked)
    SELECT %(merchant_id)s, %(slot_starts_at)s, slot.ends_at, 1 FROM slot, other
    WHERE other.booked < slot.capacity
    ON CONFLICT (merchant_id, starts_at, ends_at) DO UPDATE
        SET booked = merchants_slotbooking.booked + 1
        WHERE merchants_slotbooking.booked + (SELECT booked FROM other)
            < (SELECT capacity FROM slot)
    RETURNING booked
)
SELECT slot.ends_at, (SELECT booked FROM booking) FROM slot
"""  # noqa: S608 - fixed fragments only
# The booking after the slots' lock, taken shared by a statement of its own in the same
# round trip (`transaction_lock_sql`): the booking's statement starts after a change it
# waited for committed, and reads the slots as cut by it. Django's cursors bind their
# parameters on the client, and send the two as one query.
_SLOT_BOOK_LOCKED_SQL = f"{transaction_lock_sql(name='slots_lock', shared=True)};{_SLOT_BOOK_SQL}"


@transaction.atomic(savepoint=False)
def slot_book(*, merchant_id: int, starts_at: datetime) -> datetime:
    """Book one order into the merchant's slot starting at `starts_at`, in the caller's
    transaction; returns the slot's end. 400 when it is not one of the merchant's
    current slots, 409 when it is full."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SLOT_BOOK_LOCKED_SQL,
            {
                "merchant_id": merchant_id,
                "slot_starts_at": starts_at,
                "slots_lock": _slots_lock_name(merchant_id),
            },
        )
        cursor.nextset()
        row = cursor.fetchone()
    if row is None:
        raise SlotNotOffered(field="slot_starts_at")
    ends_at, booked = row
    if booked is None:
        raise SlotFull()
    return ends_at


@transaction.atomic(savepoint=False)
def slot_release(*, merchant_id: int, starts_at: datetime, ends_at: datetime) -> None:
    """Give back one booking of the merchant's slot `[starts_at, ends_at)` (an order that
    booked it was cancelled), in the caller's transaction: its own window's row, even
    when the merchant's slots are cut otherwise since."""
    SlotBooking.objects.filter(
        merchant_id=merchant_id, starts_at=starts_at, ends_at=ends_at, booked__gt=0
    ).update(booked=models.F("booked") - 1)
