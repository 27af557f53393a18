"""Opening hours, closures and slot plans for the seeded city.

Every merchant reads its hours in Europe/Berlin. Each kind of shop keeps the hours such
shops keep in Berlin, shifted by up to half an hour per shop: bakeries open early and on
Sunday mornings, grocers close for lunch, Spätis open in the evening and run past
midnight. A share of the merchants (`always_open_share`) are always open: with no hours,
or with hours round the clock (`round_the_clock`, the bench city). One in ten closes over
Christmas; one in twenty, and the demo owner's merchant, delivers in slots.
"""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from psycopg.types.range import Range

from demo.seeding import content
from demo.seeding.context import MerchantPlan, Progress, SeedContext, SeedOptions, copy_rows
from geomarket.answer_cache import Namespace, versions_bump
from merchants.models import Closure, Merchant, OpeningInterval, SlotPlan
from merchants.services import merchant_open_periods_refresh

ZONE = "Europe/Berlin"

MON_FRI = range(5)
MON_SAT = range(6)
EVERY_DAY = range(7)

# By merchant kind: (weekdays, opens, closes) in local time; `closes` <= `opens` runs
# past midnight.
WEEKS: dict[str, tuple[tuple[range | tuple[int, ...], str, str], ...]] = {
    "supermarket": ((MON_SAT, "07:00", "22:00"),),
    "organic": ((MON_SAT, "08:00", "20:00"),),
    "bakery": ((MON_SAT, "06:30", "18:30"), ((6,), "07:30", "12:30")),
    "butcher": ((MON_FRI, "08:00", "18:30"), ((5,), "08:00", "14:00")),
    "greengrocer": (
        (MON_FRI, "08:00", "13:00"),
        (MON_FRI, "14:00", "19:00"),
        ((5,), "08:00", "15:00"),
    ),
    "deli": ((MON_SAT, "10:00", "20:00"),),
    "spaeti": ((range(4), "17:00", "02:00"), ((4, 5), "17:00", "04:00"), ((6,), "15:00", "00:00")),
    "drugstore": ((MON_SAT, "08:00", "21:00"),),
    "pets": ((MON_FRI, "09:00", "19:00"), ((5,), "09:00", "16:00")),
    "beverages": ((MON_SAT, "09:00", "20:00"),),
    "asian": ((EVERY_DAY, "11:30", "15:00"), (EVERY_DAY, "17:30", "22:30")),
}
DEFAULT_WEEK = ((MON_SAT, "09:00", "19:00"),)
ROUND_THE_CLOCK = ((EVERY_DAY, "00:00", "00:00"),)


def _shifted(clock: str, minutes: int) -> time:
    opens = time.fromisoformat(clock)
    total = (opens.hour * 60 + opens.minute + minutes) % (24 * 60)
    return time(total // 60, total % 60)


def hours_seed(ctx: SeedContext) -> None:
    rng = ctx.rng("hours")
    merchants = ctx.merchants
    ctx.progress.start(label="opening hours", total=len(merchants))
    always_open = round(len(merchants) * ctx.options.always_open_share)
    # The demo owner's merchant first, when any merchant is to be always open.
    hourless = {plan.id for plan in merchants[:always_open]}
    zone = ZoneInfo(ZONE)
    year = ctx.options.orders_until.year
    christmas = Range(
        datetime(year, 12, 24, 14, tzinfo=zone), datetime(year, 12, 27, tzinfo=zone), "[)"
    )
    intervals, closures, plans = [], [], []
    for index, plan in enumerate(merchants):
        # Every merchant draws the same numbers, so shares stay put when one changes.
        shift, closes_for_christmas, slots = (
            rng.choice((0, 0, 15, 30, -30)),
            rng.random(),
            rng.random(),
        )
        if plan.id in hourless:
            week = ROUND_THE_CLOCK if ctx.options.round_the_clock else ()
        else:
            week = WEEKS.get(plan.kind, DEFAULT_WEEK)
        if week:
            for days, opens, closes in week:
                intervals.extend(
                    (plan.id, day, _shifted(opens, shift), _shifted(closes, shift)) for day in days
                )
        if closes_for_christmas < 0.1:
            closures.append((plan.id, christmas, "Christmas"))
        if index == 0 or slots < 0.05:
            plans.append(
                SlotPlan(
                    merchant_id=plan.id,
                    slot_minutes=30,
                    capacity=10,
                    lead_minutes=45,
                    horizon_days=3,
                )
            )
    # The merchants are one block of ids (`ids_reserve`).
    Merchant.objects.filter(pk__gte=merchants[0].id, pk__lte=merchants[-1].id).update(timezone=ZONE)
    copy_rows(
        ctx=ctx,
        model=OpeningInterval,
        count_as="opening intervals",
        columns=("merchant_id", "weekday", "opens", "closes"),
        rows=intervals,
    )
    copy_rows(
        ctx=ctx,
        model=Closure,
        count_as="closures",
        columns=("merchant_id", "period", "reason"),
        rows=closures,
    )
    SlotPlan.objects.bulk_create(plans)
    ctx.counts["slot plans"] = len(plans)
    merchant_open_periods_refresh(merchant_ids=[plan.id for plan in merchants])
    ctx.progress.finish()


def _kind_of(description: str) -> str | None:
    """The merchant kind whose description template wrote `description`."""
    for kind, _ in content.MERCHANT_KINDS:
        head, _, tail = kind.description.partition("{district}")
        if description.startswith(head) and description.endswith(tail):
            return kind.key
    return None


@transaction.atomic
def hours_add(*, options: SeedOptions, progress: Progress) -> bool:
    """The hours step, for a city seeded before it existed: each merchant's kind read
    back from its description. False, and nothing written, when any hours exist."""
    tables = [model._meta.db_table for model in (OpeningInterval, Closure, SlotPlan)]
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
        if OpeningInterval.objects.exists():
            return False
        versions_bump(Namespace.MERCHANTS)
        ctx = SeedContext(options=options, cursor=cursor, progress=progress)
        ctx.merchants = [
            MerchantPlan(
                id=merchant_id,
                kind=_kind_of(description) or "",
                lat=0.0,
                lng=0.0,
                is_active=True,
                created_at=ctx.base_time,
            )
            for merchant_id, description in Merchant.objects.order_by("id").values_list(
                "id", "description"
            )
        ]
        hours_seed(ctx)
        cursor.execute(f"ANALYZE {', '.join(tables)}")
    return True
