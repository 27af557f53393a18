"""`merchants/{id}/slots/?date=`: the day's slots (`merchants_slots`, migration
merchants/0010) cut from the openings in real time, outside closures, within the lead
time and the horizon, with what is booked of each."""

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from merchants.models import SlotBooking
from merchants.selectors import MERCHANT_DAY_SLOTS_PLAN, merchant_day_slots
from merchants.services import slot_plan_set
from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db

SUN = 6
EVERY_DAY = range(7)


def plan(shop, *, slot_minutes=30, capacity=10, lead_minutes=0, horizon_days=3):
    slot_plan_set(
        merchant=shop,
        slot_minutes=slot_minutes,
        capacity=capacity,
        lead_minutes=lead_minutes,
        horizon_days=horizon_days,
    )


def slots(shop, day) -> list[dict]:
    answer = api_client_as(None).get(f"/api/v1/merchants/{shop.pk}/slots/", {"date": str(day)})
    assert answer.status_code == 200, answer.content
    return answer.json()


def starts(answer: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(slot["starts_at"]) for slot in answer]


def utc_day(days: int) -> date:
    return (timezone.now() + timedelta(days=days)).date()


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def shop():
    return factories.merchant()


# Open 00:00-06:00 local on Sundays in Berlin. On 2027-03-28, 02:00 CET becomes 03:00
# CEST: five real hours, 23:00Z to 04:00Z. On 2027-10-31, 03:00 CEST becomes 02:00 CET:
# seven, 22:00Z to 05:00Z.
@pytest.mark.parametrize(
    ("day", "slot_minutes", "expected"),
    [
        # 00:00 and 01:30 CET, 04:00 CEST; a fourth would end after 06:00.
        ("2027-03-28", 90, ["2027-03-27T23:00", "2027-03-28T00:30", "2027-03-28T02:00"]),
        # The local hour from 02:00 does not exist: five slots, not six.
        ("2027-03-28", 60, ["2027-03-27T23:00", *(f"2027-03-28T0{h}:00" for h in range(4))]),
        # The local hour from 02:00 comes twice: seven slots.
        (
            "2027-10-31",
            60,
            ["2027-10-30T22:00", "2027-10-30T23:00", *(f"2027-10-31T0{h}:00" for h in range(5))],
        ),
    ],
)
def test_daylight_saving_days_are_cut_in_real_time(day, slot_minutes, expected):
    shop = factories.merchant()
    factories.hours(shop, (SUN, "00:00", "06:00"))
    plan(shop, slot_minutes=slot_minutes, horizon_days=14)
    seen_at = datetime.fromisoformat(day) - timedelta(days=7)
    rows = merchant_day_slots(
        merchant=shop, day=date.fromisoformat(day), at=seen_at.replace(tzinfo=UTC)
    )
    assert [row["starts_at"] for row in rows] == [
        datetime.fromisoformat(start).replace(tzinfo=UTC) for start in expected
    ]
    assert all(row["ends_at"] - row["starts_at"] == timedelta(minutes=slot_minutes) for row in rows)


def test_intervals_apart_on_the_clock_give_no_overlapping_slots_across_the_spring_skip():
    # Berlin, 2027-03-28: Saturday's night ends at 02:30, which the clocks skip (02:00 CET
    # becomes 03:00 CEST at 01:00Z); Sunday opens at 03:00, where they land. Both meet at
    # 01:00Z: Saturday's last slot ends there, Sunday's first starts there. (Read as if
    # the clocks had not moved, 02:30 was 01:30Z, and Saturday's slot from 00:45Z
    # overlapped Sunday's from 01:00Z: two bookings could hold the same time.)
    shop = factories.merchant()
    factories.hours(shop, (SUN - 1, "22:00", "02:30"), (SUN, "03:00", "06:00"))
    plan(shop, slot_minutes=45, horizon_days=14)
    seen_at = datetime(2027, 3, 20, tzinfo=UTC)
    rows = [
        row
        for day in (date(2027, 3, 27), date(2027, 3, 28))
        for row in merchant_day_slots(merchant=shop, day=day, at=seen_at)
    ]
    windows = [(row["starts_at"], row["ends_at"]) for row in rows]
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(windows))
    assert windows[0] == (utc(date(2027, 3, 27), 21), utc(date(2027, 3, 27), 21, 45))
    # Saturday: 21:00Z to 01:00Z holds five slots of 45 minutes (the sixth would end at
    # 01:30Z); Sunday: 01:00Z to 04:00Z holds four.
    assert windows[4] == (utc(date(2027, 3, 28), 0), utc(date(2027, 3, 28), 0, 45))
    assert windows[5] == (utc(date(2027, 3, 28), 1), utc(date(2027, 3, 28), 1, 45))
    assert len(windows) == 9


def half_hours_of(day: date, tz: str) -> list[datetime]:
    """The half hours whose local date in `tz` is `day`, as zoneinfo reads it: those of
    the UTC half-hour grid, which is the local one in the zones asked."""
    first = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    grid = (first + timedelta(minutes=30 * k) for k in range(3 * 48))
    return [start for start in grid if start.astimezone(ZoneInfo(tz)).date() == day]


def kept_plan_starts(shop, day: date, at: datetime) -> list[datetime]:
    """The slots' starts as the slots answer's kept plan renders them, seen at `at`."""
    with connection.cursor() as cursor:
        cursor.execute(
            MERCHANT_DAY_SLOTS_PLAN.call(), {"merchant_id": shop.pk, "date": day, "at": at}
        )
        [(_, body)] = cursor.fetchall()
    return starts(json.loads(body))


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        # Clocks go back from 01:00 to 00:00 on the 31st (the 7th): its midnight comes
        # twice, and the hour from the first is the 31st's, not the 30th's.
        ("Atlantic/Azores", "2027-10-30"),
        ("Atlantic/Azores", "2027-10-31"),
        ("America/Havana", "2027-11-06"),
        ("America/Havana", "2027-11-07"),
        # Clocks go on from 00:00 to 01:00: the day starts at 01:00.
        ("America/Havana", "2027-03-14"),
        ("America/Santiago", "2027-09-05"),
        # Clocks go back from 24:00 on the 3rd to 23:00: the repeated hour is the 3rd's.
        ("America/Santiago", "2027-04-03"),
        ("America/Santiago", "2027-04-04"),
    ],
)
def test_a_day_whose_midnight_the_clocks_move_holds_the_slots_of_its_local_date(tz, day):
    shop = factories.merchant()
    factories.hours(shop, timezone=tz)
    plan(shop, slot_minutes=30, horizon_days=14)
    day = date.fromisoformat(day)
    seen_at = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=7)
    expected = half_hours_of(day, tz)
    rows = merchant_day_slots(merchant=shop, day=day, at=seen_at)
    assert [row["starts_at"] for row in rows] == expected
    assert kept_plan_starts(shop, day, seen_at) == expected


def test_a_day_of_a_merchant_without_hours_is_cut_from_local_midnight(shop):
    plan(shop, slot_minutes=30, capacity=7)
    tomorrow = utc_day(1)
    answer = slots(shop, tomorrow)
    assert len(answer) == 48
    assert starts(answer) == [utc(tomorrow, 0) + timedelta(minutes=30 * k) for k in range(48)]
    assert answer[0] == {
        "starts_at": f"{tomorrow}T00:00:00Z",
        "ends_at": f"{tomorrow}T00:30:00Z",
        "capacity": 7,
        "booked": 0,
        "available": 7,
    }


def test_slots_lie_wholly_inside_the_opening_hours(shop):
    factories.hours(shop, *((day, "08:00", "20:00") for day in EVERY_DAY))
    plan(shop, slot_minutes=50)
    # Berlin's date tomorrow is at least a day away whatever the time.
    day = utc_day(2)
    answer = slots(shop, day)
    opens = datetime(day.year, day.month, day.day, 8, tzinfo=ZoneInfo("Europe/Berlin"))
    # 12 hours hold 14 slots of 50 minutes; the 15th would end after 20:00.
    assert starts(answer) == [opens + timedelta(minutes=50 * k) for k in range(14)]


def test_slots_overlapping_a_closure_are_not_offered(shop):
    plan(shop, slot_minutes=30)
    tomorrow = utc_day(1)
    factories.closure(shop, utc(tomorrow, 10, 10).isoformat(), utc(tomorrow, 11).isoformat())
    offered = starts(slots(shop, tomorrow))
    assert utc(tomorrow, 9, 30) in offered
    assert utc(tomorrow, 10) not in offered
    assert utc(tomorrow, 10, 30) not in offered
    # The closure is half-open: the slot at its end is offered.
    assert utc(tomorrow, 11) in offered
    assert len(offered) == 46


def test_slots_start_at_least_the_lead_time_from_now(shop):
    # The longest lead a plan takes (a day), unless it would end late in the shop's day,
    # leaving few slots or none: then a lead ending at that day's noon. A lead of a day
    # asked of tomorrow's UTC date ended after the shop's day when run late at night.
    before = timezone.now()
    end = (before + timedelta(minutes=1440)).astimezone(ZoneInfo(shop.timezone))
    if end.hour >= 20:
        end = end.replace(hour=12, minute=0, second=0, microsecond=0)
    lead = (end - before) // timedelta(minutes=1)
    plan(shop, slot_minutes=30, lead_minutes=lead)
    offered = starts(slots(shop, end.date()))
    after = timezone.now()
    assert offered
    assert min(offered) >= before + timedelta(minutes=lead)
    # and none is missing: the first comes within one slot of the lead's end.
    assert min(offered) < after + timedelta(minutes=lead + 30)


def test_slots_start_within_the_horizon(shop):
    plan(shop, slot_minutes=30, horizon_days=1)
    before = timezone.now()
    offered = starts(slots(shop, utc_day(1)))
    after = timezone.now()
    assert max(offered) < after + timedelta(days=1)
    assert max(offered) >= before + timedelta(days=1) - timedelta(minutes=30)
    assert slots(shop, utc_day(2)) == []
    plan(shop, slot_minutes=30, horizon_days=3)
    assert len(slots(shop, utc_day(2))) == 48


def test_booked_and_available_are_live(shop):
    plan(shop, slot_minutes=60, capacity=5)
    tomorrow = utc_day(1)
    for hour, booked in ((12, 3), (13, 5)):
        SlotBooking.objects.create(
            merchant=shop,
            starts_at=utc(tomorrow, hour),
            ends_at=utc(tomorrow, hour + 1),
            booked=booked,
        )
    by_start = {slot["starts_at"]: slot for slot in slots(shop, tomorrow)}
    assert by_start[f"{tomorrow}T12:00:00Z"]["booked"] == 3
    assert by_start[f"{tomorrow}T12:00:00Z"]["available"] == 2
    assert by_start[f"{tomorrow}T13:00:00Z"]["available"] == 0
    assert by_start[f"{tomorrow}T14:00:00Z"]["booked"] == 0
    # A plan cut below what is booked shows no room, never a negative one.
    plan(shop, slot_minutes=60, capacity=2)
    by_start = {slot["starts_at"]: slot for slot in slots(shop, tomorrow)}
    assert by_start[f"{tomorrow}T12:00:00Z"]["available"] == 0
    assert by_start[f"{tomorrow}T12:00:00Z"]["booked"] == 3


def test_booked_counts_every_booking_whose_window_overlaps_the_slot(shop):
    # Windows booked under other plans: of 30 minutes, and of the longest slot, 4 hours.
    tomorrow = utc_day(1)
    for (hour, minute), minutes, booked in [
        ((8, 0), 240, 1),
        ((8, 30), 240, 2),
        ((11, 30), 30, 4),
        ((12, 0), 30, 8),
        ((12, 30), 30, 16),
        ((13, 0), 30, 32),
    ]:
        starts_at = utc(tomorrow, hour, minute)
        SlotBooking.objects.create(
            merchant=shop,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            booked=booked,
        )
    plan(shop, slot_minutes=60, capacity=100)
    by_start = {slot["starts_at"]: slot for slot in slots(shop, tomorrow)}
    booked = {hour: by_start[f"{tomorrow}T{hour:02}:00:00Z"]["booked"] for hour in range(7, 15)}
    # A window ending at the slot's start, or starting at its end, only touches it.
    assert booked == {7: 0, 8: 3, 9: 3, 10: 3, 11: 7, 12: 26, 13: 32, 14: 0}
    assert by_start[f"{tomorrow}T12:00:00Z"]["available"] == 74
    assert [row["booked"] for row in merchant_day_slots(merchant=shop, day=tomorrow)][7:15] == [
        booked[hour] for hour in range(7, 15)
    ]


def test_without_a_plan_there_are_no_slots(shop):
    assert slots(shop, utc_day(1)) == []


@pytest.mark.parametrize("query", [{}, {"date": ""}, {"date": "tomorrow"}, {"date": "2026-02-30"}])
def test_a_missing_or_bad_date_is_refused(shop, query):
    plan(shop)
    answer = api_client_as(None).get(f"/api/v1/merchants/{shop.pk}/slots/", query)
    assert answer.status_code == 400
    assert "date" in answer.json()


@pytest.mark.parametrize("day", ["0001-01-01", "1970-01-01", "9999-12-31"])
def test_a_day_past_or_beyond_the_horizon_has_no_slots(shop, day):
    plan(shop, horizon_days=14)
    assert slots(shop, day) == []


def test_an_unseen_merchant_has_no_slots():
    hidden = factories.merchant(is_active=False)
    plan(hidden)
    for merchant_id in (hidden.pk, hidden.pk + 1000):
        answer = api_client_as(None).get(
            f"/api/v1/merchants/{merchant_id}/slots/", {"date": str(utc_day(1))}
        )
        assert answer.status_code == 404
