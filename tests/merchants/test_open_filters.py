"""`open_now` and `open_at` on the geo searches, the merchants' `timezone`, `open_now`
and `next_opening_at`, and cached answers that stop being true with the clock."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests import factories
from tests.market import api_client_as

pytestmark = pytest.mark.django_db

NEARBY = "/api/v1/merchants/nearby/"
DELIVERING = "/api/v1/merchants/delivering-to/"
PRODUCTS = "/api/v1/products/nearby/"
MON = 0


@pytest.fixture
def city():
    """Two shops side by side, delivering around them, each with a stocked product: one
    open on Mondays 08:00-20:00 UTC, one without hours (always open)."""
    weekly = factories.merchant(name="Weekly", lat=52.52, lng=13.405)
    always = factories.merchant(name="Always", lat=52.521, lng=13.405)
    for shop in (weekly, always):
        factories.zone(merchant=shop)
        factories.stock(product=factories.product(merchant=shop, title=f"Bread {shop.name}"))
    factories.hours(weekly, (MON, "08:00", "20:00"), timezone="UTC")
    return {"weekly": weekly, "always": always}


def names(path: str, **params) -> list[str]:
    answer = api_client_as(None).get(path, {"lat": 52.52, "lng": 13.405, **params})
    assert answer.status_code == 200, answer.json()
    results = answer.json()["results"]
    return [row.get("name") or row["merchant"]["name"] for row in results]


@pytest.mark.parametrize("path", [NEARBY, DELIVERING, PRODUCTS])
def test_open_at_keeps_the_merchants_open_then(city, path):
    monday_noon = "2026-12-07T12:00:00Z"
    tuesday_noon = "2026-12-08T12:00:00+00:00"
    assert names(path) == ["Weekly", "Always"]
    assert names(path, open_at=monday_noon) == ["Weekly", "Always"]
    assert names(path, open_at=tuesday_noon) == ["Always"]
    # The same instant with another offset.
    assert names(path, open_at="2026-12-08T13:00:00+01:00") == ["Always"]


@pytest.mark.parametrize("path", [NEARBY, DELIVERING, PRODUCTS])
def test_open_at_written_into_the_url_unencoded_keeps_its_offset(city, path):
    # `+01:00` not written as `%2B01:00` arrives as " 01:00": Monday 07:30 UTC is before
    # the weekly shop opens, Monday 08:30 UTC (09:30+01:00) after.
    answer = api_client_as(None).get(
        f"{path}?lat=52.52&lng=13.405&open_at=2026-12-07T09:30:00+01:00"
    )
    assert answer.status_code == 200, answer.json()
    assert len(answer.json()["results"]) == 2
    assert names(path, open_at="2026-12-07T08:30:00 01:00") == ["Always"]


@pytest.mark.parametrize("path", [NEARBY, DELIVERING, PRODUCTS])
def test_open_now_keeps_the_merchants_open_now(city, path):
    weekly = city["weekly"]
    now = timezone.now()
    # Open now, whatever the day: the week from yesterday to tomorrow, all day long.
    around = [((now.weekday() + shift) % 7, "00:00", "00:00") for shift in (-1, 0, 1)]
    factories.hours(weekly, *around, timezone="UTC")
    assert names(path, open_now="true") == ["Weekly", "Always"]
    factories.closure(
        weekly, (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    )
    assert names(path, open_now="true") == ["Always"]
    assert names(path, open_now="false") == ["Weekly", "Always"]


@pytest.mark.parametrize("path", [NEARBY, DELIVERING, PRODUCTS])
@pytest.mark.parametrize(
    "params",
    [
        {"open_now": "true", "open_at": "2026-12-07T12:00:00Z"},
        {"open_at": "monday"},
        # without an offset: not read as UTC
        {"open_at": "2026-12-07T12:00:00"},
        {"open_now": "perhaps"},
    ],
)
def test_bad_hours_filters_are_refused(city, path, params):
    answer = api_client_as(None).get(path, {"lat": 52.52, "lng": 13.405, **params})
    assert answer.status_code == 400
    assert set(answer.json()) & {"open_now", "open_at"}


def test_merchants_show_their_zone_and_whether_they_are_open(city):
    weekly, always = city["weekly"], city["always"]
    now = timezone.now()
    # Closed now: the only interval is the day after tomorrow.
    later = (now + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    factories.hours(weekly, (later.weekday(), "09:00", "10:00"), timezone="Europe/Berlin")
    opens = later.replace(tzinfo=ZoneInfo("Europe/Berlin"))
    expected_opening = opens.astimezone(UTC).isoformat().replace("+00:00", "Z")
    client = api_client_as(None)
    detail = client.get(f"/api/v1/merchants/{weekly.pk}/").json()
    assert detail["timezone"] == "Europe/Berlin"
    assert detail["open_now"] is False
    assert detail["next_opening_at"] == expected_opening
    listed = {row["id"]: row for row in client.get("/api/v1/merchants/").json()["results"]}
    for shown in (
        listed[weekly.pk],
        *(
            row
            for row in client.get(NEARBY, {"lat": 52.52, "lng": 13.405}).json()["results"]
            if row["id"] == weekly.pk
        ),
    ):
        assert (shown["timezone"], shown["open_now"], shown["next_opening_at"]) == (
            "Europe/Berlin",
            False,
            expected_opening,
        )
    assert (listed[always.pk]["open_now"], listed[always.pk]["next_opening_at"]) == (True, None)


def delivering_row(client, merchant):
    """delivering-to's answer at the city's point, and its row of `merchant`."""
    answer = client.get(DELIVERING, {"lat": 52.52, "lng": 13.405})
    return answer, next(row for row in answer.json()["results"] if row["id"] == merchant.pk)


def test_a_cached_answer_is_not_served_past_a_merchant_opening(city):
    """A shop whose closure ends in two seconds appears open as soon as it is, though
    delivering-to answers are cached for a minute."""
    weekly = city["weekly"]
    factories.hours(weekly, *((day, "00:00", "00:00") for day in range(7)), timezone="UTC")
    now = datetime.now(UTC)
    reopens = (now + timedelta(seconds=2)).replace(microsecond=0)
    factories.closure(weekly, (now - timedelta(hours=1)).isoformat(), reopens.isoformat())
    client = api_client_as(None)

    def weekly_row():
        return delivering_row(client, weekly)

    _, row = weekly_row()
    assert row["open_now"] is False
    assert row["next_opening_at"] == reopens.isoformat().replace("+00:00", "Z")
    again, _ = weekly_row()
    assert again["X-Cache"] == "HIT"
    time.sleep(max(0.0, (reopens - datetime.now(UTC)).total_seconds()) + 0.2)
    after, row = weekly_row()
    assert after["X-Cache"] == "MISS"
    assert (row["open_now"], row["next_opening_at"]) == (True, None)


def test_a_cached_answer_is_not_served_past_a_next_opening_coming_within_14_days(city):
    """A shop closed for over 14 days shows no next opening; once its reopening is 14 days
    away it shows it, though delivering-to answers are cached for a minute."""
    always = city["always"]
    now = datetime.now(UTC)
    reopens = (now + timedelta(days=14, seconds=2)).replace(microsecond=0)
    factories.closure(always, (now - timedelta(hours=1)).isoformat(), reopens.isoformat())
    client = api_client_as(None)

    def always_row():
        return delivering_row(client, always)

    _, row = always_row()
    assert (row["open_now"], row["next_opening_at"]) == (False, None)
    time.sleep(max(0.0, (reopens - timedelta(days=14) - datetime.now(UTC)).total_seconds()) + 0.2)
    after, row = always_row()
    # As the merchant's own answer, never cached, says now.
    detail = client.get(f"/api/v1/merchants/{always.pk}/").json()
    assert detail["next_opening_at"] == reopens.isoformat().replace("+00:00", "Z")
    assert after["X-Cache"] == "MISS"
    assert (row["open_now"], row["next_opening_at"]) == (False, detail["next_opening_at"])


def test_open_now_answers_are_never_cached(city):
    client = api_client_as(None)
    for path in (DELIVERING, PRODUCTS):
        for _ in range(2):
            answer = client.get(path, {"lat": 52.52, "lng": 13.405, "open_now": "true"})
            assert answer["X-Cache"] == "MISS", path


@pytest.mark.parametrize("write", ["hours", "closure"])
def test_writing_hours_or_closures_makes_cached_answers_unreachable(
    city, write, django_capture_on_commit_callbacks
):
    always = city["always"]
    client = api_client_as(None)
    point = {"lat": 52.52, "lng": 13.405}

    def always_open_now():
        answer = client.get(DELIVERING, point)
        return answer["X-Cache"], next(
            row["open_now"] for row in answer.json()["results"] if row["id"] == always.pk
        )

    assert always_open_now()[1] is True
    assert always_open_now() == ("HIT", True)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        if write == "hours":
            # Only some other day than yesterday, today and tomorrow: closed now.
            api_client_as(always.owner).put(
                f"/api/v1/merchants/{always.pk}/hours/",
                {
                    "timezone": "UTC",
                    "weekly": [
                        {"weekday": (now.weekday() + 3) % 7, "opens": "10:00", "closes": "11:00"}
                    ],
                },
                format="json",
            )
        else:
            factories.closure(
                always,
                (now - timedelta(hours=1)).isoformat(),
                (now + timedelta(hours=1)).isoformat(),
            )
    assert always_open_now() == ("MISS", False)
