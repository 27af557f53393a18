"""`merchants/{id}/hours/`, `closures/` and `slot-plan/`: who may read and write them, and
what they refuse."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from merchants import apis
from merchants.models import Closure, OpeningInterval, SlotPlan, _known_timezones
from tests import factories
from tests.market import api_client_as
from tests.threads import Worker

pytestmark = pytest.mark.django_db

WEEK = {
    "timezone": "Europe/Berlin",
    "weekly": [
        {"weekday": 0, "opens": "08:00", "closes": "12:00"},
        {"weekday": 0, "opens": "14:00", "closes": "20:00"},
        {"weekday": 5, "opens": "22:00", "closes": "02:00"},
    ],
}
PLAN = {"slot_minutes": 30, "capacity": 10, "lead_minutes": 45, "horizon_days": 3}


@pytest.fixture
def shop():
    return factories.merchant()


def url(shop, tail: str) -> str:
    return f"/api/v1/merchants/{shop.pk}/{tail}"


def test_the_owner_replaces_the_week_and_anyone_reads_it(shop):
    owner = api_client_as(shop.owner)
    assert owner.put(url(shop, "hours/"), WEEK, format="json").status_code == 200
    answer = api_client_as(None).get(url(shop, "hours/"))
    assert answer.status_code == 200
    assert answer.json() == WEEK
    shop.refresh_from_db()
    assert shop.timezone == "Europe/Berlin"
    replaced = {"timezone": "UTC", "weekly": [{"weekday": 3, "opens": "09:00", "closes": "17:00"}]}
    assert owner.put(url(shop, "hours/"), replaced, format="json").json() == replaced
    assert OpeningInterval.objects.filter(merchant=shop).count() == 1


@pytest.mark.parametrize(
    "weekly",
    [
        # overlapping on one day
        [
            {"weekday": 0, "opens": "08:00", "closes": "12:00"},
            {"weekday": 0, "opens": "11:00", "closes": "13:00"},
        ],
        # Monday's night runs into Tuesday's morning
        [
            {"weekday": 0, "opens": "22:00", "closes": "06:00"},
            {"weekday": 1, "opens": "05:00", "closes": "09:00"},
        ],
        # Sunday's night runs into Monday's morning, across the week's end
        [
            {"weekday": 6, "opens": "22:00", "closes": "06:00"},
            {"weekday": 0, "opens": "05:30", "closes": "09:00"},
        ],
        # one interval inside a long one
        [
            {"weekday": 2, "opens": "06:00", "closes": "23:00"},
            {"weekday": 2, "opens": "08:00", "closes": "09:00"},
            {"weekday": 2, "opens": "23:00", "closes": "23:30"},
        ],
        [{"weekday": 7, "opens": "08:00", "closes": "12:00"}],
        [{"weekday": 0, "opens": "25:00", "closes": "12:00"}],
        [{"weekday": 0, "opens": "8", "closes": "12:00"}],
    ],
)
def test_bad_weeks_are_refused_and_change_nothing(shop, weekly):
    owner = api_client_as(shop.owner)
    owner.put(url(shop, "hours/"), WEEK, format="json")
    answer = owner.put(url(shop, "hours/"), {"timezone": "UTC", "weekly": weekly}, format="json")
    assert answer.status_code == 400
    assert "weekly" in answer.json()
    assert api_client_as(None).get(url(shop, "hours/")).json() == WEEK


def test_an_unknown_timezone_is_refused(shop):
    answer = api_client_as(shop.owner).put(
        url(shop, "hours/"), {"timezone": "Mars/Olympus", "weekly": []}, format="json"
    )
    assert answer.status_code == 400
    assert "timezone" in answer.json()


def test_a_timezone_no_response_can_encode_is_refused_not_echoed(shop):
    owner = api_client_as(shop.owner)
    owner.raise_request_exception = False
    # A lone surrogate, as a JSON escape: valid JSON, no valid text.
    body = '{"timezone": "\\ud800", "weekly": []}'
    answer = owner.generic("PUT", url(shop, "hours/"), body, content_type="application/json")
    assert answer.status_code == 400
    assert "timezone" in answer.json()


# Files on the tz search path that IANA does not name: Debian's link to the host's own
# zone, zic's default rules, and the trees Python leaves out.
@pytest.mark.parametrize("name", ["localtime", "posixrules", "posix/Europe/Berlin", "right/UTC"])
def test_a_file_of_the_tz_directory_that_is_no_iana_zone_is_refused(shop, name):
    owner = api_client_as(shop.owner)
    owner.put(url(shop, "hours/"), WEEK, format="json")
    answer = owner.put(url(shop, "hours/"), {"timezone": name, "weekly": []}, format="json")
    assert answer.status_code == 400
    assert "timezone" in answer.json()
    shop.refresh_from_db()
    assert shop.timezone == WEEK["timezone"]


@pytest.mark.parametrize("name", ["CET", "EET", "MET", "WET"])
def test_a_zone_postgresql_reads_as_a_fixed_offset_is_refused(shop, name):
    answer = api_client_as(shop.owner).put(
        url(shop, "hours/"), {"timezone": name, "weekly": []}, format="json"
    )
    assert answer.status_code == 400
    assert "timezone" in answer.json()


def test_postgresql_reads_every_accepted_zone_as_python_does():
    """A noon in winter and in summer, as an instant, by PostgreSQL and by zoneinfo, for
    every name a merchant may take: the hours and slots SQL reads the zone by its name."""
    # Wall-clock times, read in each zone: no offset of their own.
    noons = [datetime(2027, 1, 15, 12), datetime(2027, 7, 15, 12)]  # noqa: DTZ001
    names = sorted(_known_timezones())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT z.name, n.at, n.at AT TIME ZONE z.name"
            " FROM unnest(%s::text[]) z(name) CROSS JOIN unnest(%s::timestamp[]) n(at)",
            [names, noons],
        )
        read = cursor.fetchall()
    assert len(read) == 2 * len(names)
    disagree = [
        name for name, noon, instant in read if instant != noon.replace(tzinfo=ZoneInfo(name))
    ]
    assert disagree == []


@pytest.mark.parametrize(
    "name", ["Europe/Berlin", "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "EST5EDT"]
)
def test_iana_zone_names_are_taken(shop, name):
    week = {"timezone": name, "weekly": []}
    answer = api_client_as(shop.owner).put(url(shop, "hours/"), week, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == week


@pytest.mark.django_db(transaction=True)
def test_a_put_answers_its_own_week_when_another_commits_before_it_answers(shop, monkeypatch):
    real = apis.merchant_hours_replace

    def then_another_writer(**kwargs):
        written = real(**kwargs)
        other = Worker(lambda: factories.hours(shop, (3, "09:00", "17:00"), timezone="UTC"))
        other.start()
        other.outcome()
        return written

    monkeypatch.setattr(apis, "merchant_hours_replace", then_another_writer)
    answer = api_client_as(shop.owner).put(url(shop, "hours/"), WEEK, format="json")
    assert answer.status_code == 200
    assert answer.json() == WEEK
    # The other week did commit in between: it is the one kept.
    assert api_client_as(None).get(url(shop, "hours/")).json() == {
        "timezone": "UTC",
        "weekly": [{"weekday": 3, "opens": "09:00", "closes": "17:00"}],
    }


def test_only_the_owner_or_an_operator_writes_hours(shop):
    stranger = api_client_as(factories.user())
    assert stranger.put(url(shop, "hours/"), WEEK, format="json").status_code == 403
    assert api_client_as(None).put(url(shop, "hours/"), WEEK, format="json").status_code == 401
    operator = api_client_as(factories.user(is_staff=True))
    assert operator.put(url(shop, "hours/"), WEEK, format="json").status_code == 200


def test_closures_are_listed_created_and_deleted(shop):
    owner = api_client_as(shop.owner)
    body = {
        "starts_at": "2026-12-24T00:00:00Z",
        "ends_at": "2026-12-27T00:00:00Z",
        "reason": "Holidays",
    }
    created = owner.post(url(shop, "closures/"), body, format="json")
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], **body}
    listed = api_client_as(None).get(url(shop, "closures/")).json()
    assert listed["count"] == 1
    assert listed["results"] == [created.json()]
    closure_url = url(shop, f"closures/{created.json()['id']}/")
    assert api_client_as(factories.user()).delete(closure_url).status_code == 403
    assert owner.delete(closure_url).status_code == 204
    assert not Closure.objects.filter(merchant=shop).exists()
    assert owner.delete(closure_url).status_code == 404


def test_another_merchants_closure_is_not_reachable_through_mine(shop):
    other = factories.merchant()
    theirs = factories.closure(other, "2026-12-24T00:00:00+00:00", "2026-12-27T00:00:00+00:00")
    answer = api_client_as(shop.owner).delete(url(shop, f"closures/{theirs.pk}/"))
    assert answer.status_code == 404
    assert Closure.objects.filter(pk=theirs.pk).exists()


def test_overlapping_closures_are_refused_by_the_database_rule(shop):
    owner = api_client_as(shop.owner)
    first = {"starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-27T00:00:00Z"}
    assert owner.post(url(shop, "closures/"), first, format="json").status_code == 201
    overlapping = {"starts_at": "2026-12-26T23:00:00Z", "ends_at": "2026-12-28T00:00:00Z"}
    answer = owner.post(url(shop, "closures/"), overlapping, format="json")
    assert answer.status_code == 400
    assert Closure.objects.filter(merchant=shop).count() == 1
    # Half-open: one may start when the other ends.
    touching = {"starts_at": "2026-12-27T00:00:00Z", "ends_at": "2026-12-28T00:00:00Z"}
    assert owner.post(url(shop, "closures/"), touching, format="json").status_code == 201
    # Another merchant's closures do not count.
    other = factories.merchant()
    assert (
        api_client_as(other.owner).post(url(other, "closures/"), first, format="json").status_code
        == 201
    )


@pytest.mark.parametrize(
    "body",
    [
        {"starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-24T00:00:00Z"},
        {"starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-23T00:00:00Z"},
        {"starts_at": "soon", "ends_at": "2026-12-23T00:00:00Z"},
        {"ends_at": "2026-12-23T00:00:00Z"},
        # without an offset: not read as UTC
        {"starts_at": "2026-12-24T00:00:00", "ends_at": "2026-12-25T00:00:00Z"},
        {"starts_at": "2026-12-24T00:00:00Z", "ends_at": "2026-12-25T00:00:00"},
        # a space for the offset's sign: only a query string makes one of a `+`
        {"starts_at": "2026-12-24T00:00:00 01:00", "ends_at": "2026-12-25T00:00:00Z"},
    ],
)
def test_bad_closures_are_refused(shop, body):
    answer = api_client_as(shop.owner).post(url(shop, "closures/"), body, format="json")
    assert answer.status_code == 400
    assert not Closure.objects.exists()


def test_the_slot_plan_is_set_read_and_deleted(shop):
    owner = api_client_as(shop.owner)
    assert api_client_as(None).get(url(shop, "slot-plan/")).status_code == 404
    assert owner.put(url(shop, "slot-plan/"), PLAN, format="json").json() == PLAN
    assert api_client_as(None).get(url(shop, "slot-plan/")).json() == PLAN
    assert api_client_as(factories.user()).delete(url(shop, "slot-plan/")).status_code == 403
    assert owner.delete(url(shop, "slot-plan/")).status_code == 204
    assert not SlotPlan.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slot_minutes", 9),
        ("slot_minutes", 241),
        ("capacity", 0),
        ("capacity", 1001),
        ("lead_minutes", -1),
        ("lead_minutes", 1441),
        ("horizon_days", 0),
        ("horizon_days", 15),
    ],
)
def test_slot_plan_bounds(shop, field, value):
    answer = api_client_as(shop.owner).put(
        url(shop, "slot-plan/"), {**PLAN, field: value}, format="json"
    )
    assert answer.status_code == 400
    assert field in answer.json()
    assert not SlotPlan.objects.exists()
