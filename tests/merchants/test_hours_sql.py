"""Open or closed at an instant: `merchants_open_at` and `merchants_next_opening`
(migration merchants/0009, local times read by `merchants_local_instant`, 0026), across
daylight-saving changes and far from UTC."""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from geomarket.errors import DomainError
from merchants.selectors import (
    _OPEN_BOUNDS_SQL,
    _open_period_sql,
    merchant_next_opening,
    merchant_open_at,
)
from merchants.services import _refuse_overlaps, merchant_open_periods_refresh
from tests import factories

pytestmark = pytest.mark.django_db

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def is_open(merchant, instant: str) -> bool:
    return merchant_open_at(merchant_id=merchant.pk, at=at(instant))


def test_a_merchant_without_hours_is_always_open():
    shop = factories.merchant()
    assert is_open(shop, "2026-12-06T03:00:00+00:00")
    assert is_open(shop, "2026-12-07T23:59:59+00:00")


def test_open_inside_an_interval_and_closed_at_its_end():
    shop = factories.merchant()
    # Monday 2026-12-07, Berlin in winter: UTC+1.
    factories.hours(shop, (MON, "08:00", "20:00"))
    assert not is_open(shop, "2026-12-07T06:59:59+00:00")
    assert is_open(shop, "2026-12-07T07:00:00+00:00")
    assert is_open(shop, "2026-12-07T18:59:59+00:00")
    assert not is_open(shop, "2026-12-07T19:00:00+00:00")
    # Tuesday has no interval.
    assert not is_open(shop, "2026-12-08T10:00:00+00:00")


def test_an_interval_past_midnight_is_open_into_the_next_day():
    shop = factories.merchant()
    factories.hours(shop, (FRI, "18:00", "02:00"))
    # Friday 2026-12-04 18:00 CET to Saturday 02:00 CET.
    assert is_open(shop, "2026-12-05T00:30:00+00:00")
    assert not is_open(shop, "2026-12-05T01:00:00+00:00")
    assert not is_open(shop, "2026-12-03T23:00:00+00:00")


def test_sunday_night_runs_into_monday():
    shop = factories.merchant()
    factories.hours(shop, (SUN, "22:00", "03:00"))
    # Sunday 2026-12-06 22:00 CET to Monday 03:00 CET.
    assert is_open(shop, "2026-12-07T01:00:00+00:00")
    assert not is_open(shop, "2026-12-07T02:00:00+00:00")


def test_spring_change_in_berlin_shortens_a_night_interval_to_its_real_time():
    shop = factories.merchant()
    # Saturday 2026-03-28 22:00 CET (21:00 UTC) to Sunday 06:00 CEST (04:00 UTC): the
    # clocks skip 02:00 to 03:00, so the night lasts seven real hours, not eight.
    factories.hours(shop, (SAT, "22:00", "06:00"))
    assert not is_open(shop, "2026-03-28T20:59:59+00:00")
    assert is_open(shop, "2026-03-28T21:00:00+00:00")
    assert is_open(shop, "2026-03-29T03:59:59+00:00")
    assert not is_open(shop, "2026-03-29T04:00:00+00:00")


def test_autumn_change_in_berlin_lengthens_a_night_interval_to_its_real_time():
    shop = factories.merchant()
    # Saturday 2026-10-24 22:00 CEST (20:00 UTC) to Sunday 06:00 CET (05:00 UTC): the
    # clocks repeat 02:00 to 03:00, so the night lasts nine real hours.
    factories.hours(shop, (SAT, "22:00", "06:00"))
    assert not is_open(shop, "2026-10-24T19:59:59+00:00")
    assert is_open(shop, "2026-10-24T20:00:00+00:00")
    assert is_open(shop, "2026-10-25T04:59:59+00:00")
    assert not is_open(shop, "2026-10-25T05:00:00+00:00")


def test_an_interval_across_the_spring_gap_lasts_its_real_time():
    shop = factories.merchant()
    # Sunday 2026-03-29 01:00 CET (00:00 UTC) to 04:00 CEST (02:00 UTC): two real hours.
    factories.hours(shop, (SUN, "01:00", "04:00"))
    assert is_open(shop, "2026-03-29T00:00:00+00:00")
    assert is_open(shop, "2026-03-29T01:59:59+00:00")
    assert not is_open(shop, "2026-03-29T02:00:00+00:00")


def open_periods(merchant, t0: str, t1: str) -> list[tuple[datetime, datetime]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT merchants_open_periods(id, timezone, %s, %s) FROM merchants_merchant"
            " WHERE id = %s",
            [at(t0), at(t1), merchant.pk],
        )
        return [(period.lower, period.upper) for period in cursor.fetchone()[0]]


# Each interval opens and closes the first time its zone's clock shows its time: where
# the clocks skip the time, as they move past it; where they show it twice, at the first.
@pytest.mark.parametrize(
    ("tz", "interval", "day", "opens", "closes"),
    [
        # Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z). Open as the clock
        # reads 03:00, past 02:30: two real hours to 05:00 CEST, not one and a half.
        ("Europe/Berlin", (SUN, "02:30", "05:00"), "2026-03-29", "01:00", "03:00"),
        # Closing at 02:30, it closes as the clocks move.
        ("Europe/Berlin", (SUN, "00:00", "02:30"), "2026-03-29", "-1 23:00", "01:00"),
        # Wholly skipped: not open at all that day.
        ("Europe/Berlin", (SUN, "02:15", "02:45"), "2026-03-29", None, None),
        # Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z). Open from the first
        # 02:30 (CEST) to 04:00 CET: two and a half real hours.
        ("Europe/Berlin", (SUN, "02:30", "04:00"), "2026-10-25", "00:30", "03:00"),
        # Across the repeated hour: from 01:00 CEST to 03:00 CET, three real hours.
        ("Europe/Berlin", (SUN, "01:00", "03:00"), "2026-10-25", "-1 23:00", "02:00"),
        # Azores, 2027-10-31: 01:00 (UTC+0) becomes 00:00 (UTC-1) at 01:00Z. Sunday opens
        # at its first midnight, 00:00Z.
        ("Atlantic/Azores", (SUN, "00:00", "06:00"), "2027-10-31", "00:00", "07:00"),
    ],
)
def test_an_interval_opens_and_closes_the_first_time_the_clock_shows_its_times(
    tz, interval, day, opens, closes
):
    shop = factories.merchant()
    factories.hours(shop, interval, timezone=tz)
    midnight = at(f"{day}T00:00:00+00:00")

    def instant(text: str) -> datetime:
        days, _, clock = text.rpartition(" ")
        hours, minutes = map(int, clock.split(":"))
        return midnight + timedelta(days=int(days or 0), hours=hours, minutes=minutes)

    expected = [] if opens is None else [(instant(opens), instant(closes))]
    day_before, day_after = midnight - timedelta(days=1), midnight + timedelta(days=1)
    assert open_periods(shop, day_before.isoformat(), day_after.isoformat()) == expected


def first_shown(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant the clock of `zone` shows `local` (naive) or a later time."""
    readings = [local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    shown = [r for r in readings if r.astimezone(zone).replace(tzinfo=None) == local]
    if shown:
        return min(shown)
    # Skipped: the clocks move past it between its readings at the offsets after and
    # before the move.
    instant = min(readings)
    while instant.astimezone(zone).replace(tzinfo=None) < local:
        instant += timedelta(minutes=1)
    return instant


def test_local_times_are_read_as_the_first_instant_the_clock_shows_them():
    """`merchants_local_instant` (migration 0026) against zoneinfo, every quarter hour
    of the days around each change of 2027 in zones whose clocks move by an hour, half an
    hour or two, at midnight or at night, and of Samoa's skipped day in 2011."""
    zones = [
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Antarctica/Troll",
        "Atlantic/Azores",
        "America/Havana",
        "America/Santiago",
        "America/St_Johns",
        "Pacific/Apia",
    ]
    cases = []
    for name in zones:
        zone = ZoneInfo(name)
        days = [date(2011, 12, 30)] if name == "Pacific/Apia" else []
        days += [
            day
            for day in (date(2027, 1, 1) + timedelta(days=k) for k in range(365))
            if datetime.combine(day, time(0), zone).utcoffset()
            != datetime.combine(day + timedelta(days=1), time(0), zone).utcoffset()
        ]
        for day in days:
            first = datetime.combine(day - timedelta(days=1), time(12))
            cases += [(name, first + timedelta(minutes=15 * k)) for k in range(4 * 48)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT merchants_local_instant(c.local, c.tz)"
            " FROM unnest(%s::text[], %s::timestamp[]) WITH ORDINALITY c(tz, local, n)"
            " ORDER BY c.n",
            [[name for name, _ in cases], [local for _, local in cases]],
        )
        read = [row[0] for row in cursor.fetchall()]
    assert len(cases) > 8 * 192
    expected = [first_shown(local, ZoneInfo(name)) for name, local in cases]
    compared = zip(cases, read, expected, strict=True)
    assert [case for case, got, want in compared if got != want] == []


def test_hours_far_ahead_of_utc_are_read_on_the_local_date():
    shop = factories.merchant()
    # Monday 09:00-17:00 in Auckland, summer time (UTC+13): Monday 2026-12-07 09:00
    # NZDT is Sunday 2026-12-06 20:00 UTC.
    factories.hours(shop, (MON, "09:00", "17:00"), timezone="Pacific/Auckland")
    assert not is_open(shop, "2026-12-06T19:59:59+00:00")
    assert is_open(shop, "2026-12-06T20:00:00+00:00")
    assert is_open(shop, "2026-12-07T03:59:59+00:00")
    assert not is_open(shop, "2026-12-07T04:00:00+00:00")


def test_hours_at_a_half_hour_offset_without_summer_time():
    shop = factories.merchant()
    # St. John's in December is UTC-3:30 (no summer time then); Kolkata is UTC+5:30 all
    # year.
    factories.hours(shop, (MON, "09:00", "17:00"), timezone="America/St_Johns")
    assert not is_open(shop, "2026-12-07T12:29:59+00:00")
    assert is_open(shop, "2026-12-07T12:30:00+00:00")
    assert not is_open(shop, "2026-12-07T20:30:00+00:00")
    india = factories.merchant()
    factories.hours(india, (MON, "09:00", "17:00"), timezone="Asia/Kolkata")
    assert is_open(india, "2026-12-07T03:30:00+00:00")
    assert not is_open(india, "2026-12-07T03:29:59+00:00")
    assert not is_open(india, "2026-12-07T11:30:00+00:00")


def test_a_closure_closes_an_open_merchant_half_open():
    shop = factories.merchant()
    factories.hours(shop, (MON, "08:00", "20:00"))
    factories.closure(shop, "2026-12-07T10:00:00+00:00", "2026-12-07T12:00:00+00:00")
    assert is_open(shop, "2026-12-07T09:59:59+00:00")
    assert not is_open(shop, "2026-12-07T10:00:00+00:00")
    assert not is_open(shop, "2026-12-07T11:59:59+00:00")
    assert is_open(shop, "2026-12-07T12:00:00+00:00")


def test_the_next_opening_is_the_next_interval_or_a_closure_end():
    shop = factories.merchant()
    factories.hours(shop, (MON, "08:00", "20:00"), (WED, "08:00", "20:00"))
    factories.closure(shop, "2026-12-09T06:30:00+00:00", "2026-12-09T09:00:00+00:00")

    def next_opening(instant: str):
        return merchant_next_opening(merchant_id=shop.pk, at=at(instant))

    # Open now: none.
    assert next_opening("2026-12-07T12:00:00+00:00") is None
    # Monday evening: Wednesday's opening is inside the closure, so the closure's end.
    assert next_opening("2026-12-07T20:00:00+00:00") == at("2026-12-09T09:00:00+00:00")
    # Wednesday evening: next Monday 08:00 CET.
    assert next_opening("2026-12-09T19:30:00+00:00") == at("2026-12-14T07:00:00+00:00")


def test_a_closure_ending_as_an_interval_closes_leaves_the_next_interval_as_next_opening():
    shop = factories.merchant()
    factories.hours(shop, (MON, "08:00", "20:00"), (TUE, "08:00", "20:00"), timezone="UTC")
    factories.closure(shop, "2026-12-07T06:00:00+00:00", "2026-12-07T20:00:00+00:00")
    # Sunday: Monday's opening lies wholly in the closure, which ends as it closes.
    assert merchant_next_opening(merchant_id=shop.pk, at=at("2026-12-06T12:00:00+00:00")) == at(
        "2026-12-08T08:00:00+00:00"
    )


def test_no_next_opening_within_fourteen_days():
    shop = factories.merchant()
    factories.hours(shop, (MON, "08:00", "20:00"))
    factories.closure(shop, "2026-12-07T00:00:00+00:00", "2027-01-31T00:00:00+00:00")
    assert merchant_next_opening(merchant_id=shop.pk, at=at("2026-12-08T00:00:00+00:00")) is None


def kept_and_exact(merchant_id: int, instant: datetime) -> tuple[bool, bool, object, object]:
    """`merchants_open_at_kept` and `merchants_open_at` at `instant`, and the first open
    period from it by `merchants_open_within` and by `merchants_open_periods`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT merchants_open_at_kept(open_periods, open_periods_span, id, timezone, %(at)s),
                   merchants_open_at(id, timezone, %(at)s),
                   merchants_open_within(open_periods, open_periods_span, id, timezone,
                                         %(at)s, %(at)s + interval '14 days'),
                   merchants_open_periods(id, timezone, %(at)s, %(at)s + interval '14 days')
            FROM merchants_merchant WHERE id = %(id)s
            """,
            {"id": merchant_id, "at": instant},
        )
        return cursor.fetchone()


def random_week(rng: random.Random) -> list[tuple[int, str, str]]:
    """Up to seven intervals, some past midnight, none overlapping another."""
    while True:
        week = []
        for day in rng.sample(range(7), rng.randint(0, 7)):
            opens = rng.randrange(0, 24 * 60, 30)
            closes = (opens + rng.randrange(60, 20 * 60, 30)) % (24 * 60)
            week.append(
                (day, f"{opens // 60:02}:{opens % 60:02}", f"{closes // 60:02}:{closes % 60:02}")
            )
        intervals = [
            {"weekday": day, "opens": time.fromisoformat(o), "closes": time.fromisoformat(c)}
            for day, o, c in week
        ]
        try:
            _refuse_overlaps(intervals)
        except DomainError:
            continue
        return week


def test_the_periods_kept_on_merchants_answer_as_the_function_does():
    """Random weeks (nights past midnight, several intervals a day), closures and zones,
    asked at random instants around now and both of Berlin's changes: the kept periods
    and the function agree, and the service keeps them after every write."""
    rng = random.Random(19)
    zones = ["Europe/Berlin", "Pacific/Auckland", "America/St_Johns", "UTC", "Asia/Kolkata"]
    now = timezone.now()
    for _ in range(12):
        shop = factories.merchant()
        week = random_week(rng)
        factories.hours(shop, *week, timezone=rng.choice(zones))
        start = now + timedelta(hours=rng.randint(-20, 300))
        factories.closure(
            shop, start.isoformat(), (start + timedelta(hours=rng.randint(1, 60))).isoformat()
        )
        instants = [now + timedelta(minutes=rng.randint(-23 * 60, 15 * 24 * 60)) for _ in range(40)]
        for instant in instants:
            kept, exact, kept_periods, exact_periods = kept_and_exact(shop.pk, instant)
            assert kept == exact, (week, instant)
            assert kept_periods == exact_periods, (week, instant)


def test_outside_the_kept_span_the_function_answers():
    shop = factories.merchant()
    # Closed on Mondays, 08:00-20:00 UTC the rest of the week.
    factories.hours(shop, *((day, "08:00", "20:00") for day in range(1, 7)), timezone="UTC")
    monday_noon = timezone.now() + timedelta(days=30)
    monday_noon = (monday_noon - timedelta(days=monday_noon.weekday())).replace(hour=12, minute=0)
    kept, exact, kept_periods, exact_periods = kept_and_exact(shop.pk, monday_noon)
    assert (kept, exact) == (False, False)
    assert kept_periods == exact_periods


def test_the_refresh_task_refreshes_what_reaches_too_short_a_way():
    fresh = factories.merchant()
    stale = factories.merchant()
    with connection.cursor() as cursor:
        # As a refresh two days ago left it.
        cursor.execute(
            "UPDATE merchants_merchant SET open_periods_span ="
            " tstzrange(now() - interval '3 days', now() + interval '14 days') WHERE id = %s",
            [stale.pk],
        )
        cursor.execute(
            "UPDATE merchants_merchant SET open_periods_span = NULL WHERE id = %s", [fresh.pk]
        )
    assert merchant_open_periods_refresh() == 2
    assert merchant_open_periods_refresh() == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM merchants_merchant WHERE id = ANY(%s)"
            " AND upper(open_periods_span) > now() + interval '15 days'",
            [[fresh.pk, stale.pk]],
        )
        assert cursor.fetchone()[0] == 2


FIRST_PERIOD_SQL = f"""
SELECT {_open_period_sql(now="%(at)s")["open_from"]},
       {_open_period_sql(now="%(at)s")["open_until"]},
       (SELECT r FROM unnest(merchants_open_periods(m.id, m.timezone, %(at)s,
                                                    %(at)s + interval '14 days')) r
        LIMIT 1)
FROM merchants_merchant m CROSS JOIN LATERAL ({_OPEN_BOUNDS_SQL.format(m="m", now="%(at)s")}) kept
WHERE m.id = %(id)s
"""  # noqa: S608 - fixed fragments only


def test_the_first_open_period_read_from_the_bounds_is_the_functions_first_period():
    """The answers' open period, read from the kept bounds (migration 0014) by a binary
    search, is the first period of `merchants_open_periods` over the next 14 days: at
    random instants, at each period's start and end and 14 days before them (where the
    period starts or ends as the 14 days do), a microsecond either side too, and outside
    the kept span, for random weeks (none: always open), closures and zones."""
    rng = random.Random(14)
    zones = ["Europe/Berlin", "Pacific/Auckland", "America/St_Johns", "UTC", "Asia/Kolkata"]
    now = timezone.now()
    micro = timedelta(microseconds=1)
    for n in range(10):
        shop = factories.merchant()
        # The first two have no hours (always open). The first's period runs past the 14
        # days, which clip it. The second is closed for 15 days: 14 days before it
        # reopens, it opens as they end (inside the kept span).
        factories.hours(shop, *(random_week(rng) if n > 1 else []), timezone=rng.choice(zones))
        start = now + timedelta(hours=rng.randint(-20, 300) if n > 1 else -1)
        length = timedelta(hours=rng.randint(1, 60) if n > 1 else 15 * 24 + 1)
        if n:
            factories.closure(shop, start.isoformat(), (start + length).isoformat())
        instants = [now + timedelta(hours=hours) for hours in range(-20, 49, 4)]
        instants += [now + timedelta(minutes=rng.randint(-1800, 40 * 24 * 60)) for _ in range(20)]
        # Where the closure ends as the 14 days do.
        instants += [start + length - timedelta(days=14) + step * micro for step in (-1, 0, 1)]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT lower(r), upper(r) FROM unnest((SELECT open_periods"
                " FROM merchants_merchant WHERE id = %s)) r",
                [shop.pk],
            )
            for bounds in cursor.fetchall():
                instants += [
                    bound + step + back
                    for bound in bounds
                    for step in (-micro, timedelta(0), micro)
                    for back in (timedelta(0), -timedelta(days=14))
                ]
            for instant in instants:
                cursor.execute(FIRST_PERIOD_SQL, {"id": shop.pk, "at": instant})
                open_from, open_until, period = cursor.fetchone()
                expected = (None, None) if period is None else (period.lower, period.upper)
                assert (open_from, open_until) == expected, (shop.pk, instant)


def test_closures_are_half_open():
    shop = factories.merchant()
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO merchants_closure (merchant_id, period, reason)"
            " VALUES (%s, tstzrange(now(), now() + interval '1 hour', '[]'), '')",
            [shop.pk],
        )
