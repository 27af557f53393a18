"""Courier tracks: every ping kept with its fields, late pings kept without moving the
courier, the operator's track read with its geodesic length, partitions by UTC day and
retention by whole partitions."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.utils import timezone

from delivery.services import courier_ping, courier_track_partitions_maintain
from delivery.tasks import courier_track_partitions
from tests import factories
from tests.geo_fixtures import GEOD

pytestmark = pytest.mark.django_db

PING = "/api/v1/couriers/me/location/"


def track_rows(courier_id: int) -> list[tuple]:
    """The courier's kept points, straight from the table, in time order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT recorded_at, ST_Y(location::geometry), ST_X(location::geometry),"
            " heading::numeric::float8, speed_mps::numeric::float8,"
            " accuracy_m::numeric::float8"
            " FROM delivery_courierping WHERE courier_id = %s ORDER BY recorded_at",
            [courier_id],
        )
        return cursor.fetchall()


def partition_of_rows(courier_id: int) -> dict:
    """recorded_at -> the partition holding the point."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT recorded_at, tableoid::regclass::text FROM delivery_courierping"
            " WHERE courier_id = %s",
            [courier_id],
        )
        return dict(cursor.fetchall())


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'delivery_courierping'::regclass"
        )
        return {name for (name,) in cursor.fetchall()}


def day_partition(day) -> str:
    return f"delivery_courierping_p{day:%Y%m%d}"


def ensure_partitions(first, days: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT delivery_courierping_partitions_ensure(%s, %s)", [first, days])


def test_every_ping_is_kept_with_its_fields(as_user, make_courier):
    courier = make_courier(age_s=1000)
    client = as_user(courier.user)
    now = timezone.now()
    sent = [
        {"lat": 52.5, "lng": 13.3, "heading": 12.3, "speed_mps": 4.5, "accuracy_m": 8.0},
        {"lat": 52.501, "lng": 13.301, "heading": 0, "speed_mps": 0, "accuracy_m": 0},
        {"lat": 52.502, "lng": 13.302, "heading": 360, "speed_mps": 100, "accuracy_m": 10_000},
        {"lat": 52.503, "lng": 13.303},
    ]
    for seconds, body in zip((-30, -20, -10, None), sent, strict=True):
        if seconds is not None:
            body = {**body, "recorded_at": (now + timedelta(seconds=seconds)).isoformat()}
        response = client.post(PING, body)
        assert response.status_code == 200, response.json()
    kept = track_rows(courier.pk)
    assert [row[1:] for row in kept] == [
        (52.5, 13.3, 12.3, 4.5, 8.0),
        (52.501, 13.301, 0.0, 0.0, 0.0),
        (52.502, 13.302, 360.0, 100.0, 10_000.0),
        (52.503, 13.303, None, None, None),
    ]
    assert [row[0] for row in kept[:3]] == [now + timedelta(seconds=s) for s in (-30, -20, -10)]
    # Without recorded_at, the server's time.
    assert now <= kept[3][0] <= timezone.now()
    courier.refresh_from_db()
    assert (courier.location.y, courier.location.x) == (52.503, 13.303)
    assert courier.location_updated_at == kept[3][0]


def test_values_too_small_for_the_tracks_columns_are_kept_as_zero(as_user, make_courier):
    # Within the serializer's bounds, but below what 4 bytes hold: PostgreSQL refused
    # them, and the ping failed with a 400.
    courier = make_courier(age_s=1000)
    client = as_user(courier.user)
    tiny = {"heading": 4.4e-212, "speed_mps": 1e-50, "accuracy_m": 5e-324}
    response = client.post(PING, {"lat": 52.5, "lng": 13.3, **tiny})
    assert response.status_code == 200, response.json()
    # One a real holds, if barely, is kept as it is.
    response = client.post(PING, {"lat": 52.501, "lng": 13.301, "heading": 1e-40})
    assert response.status_code == 200, response.json()
    kept = track_rows(courier.pk)
    assert [row[3:] for row in kept] == [(0.0, 0.0, 0.0), (pytest.approx(1e-40), None, None)]


@pytest.mark.parametrize(
    "extra",
    [
        {"heading": -0.1},
        {"heading": 360.1},
        {"heading": "NaN"},
        {"speed_mps": -1},
        {"speed_mps": 100.5},
        {"accuracy_m": -0.01},
        {"accuracy_m": 10_000.5},
        {"recorded_at": "yesterday"},
        {"recorded_at": "future"},
        {"recorded_at": "stale"},
    ],
)
def test_a_ping_out_of_bounds_is_400_and_writes_nothing(as_user, make_courier, extra):
    courier = make_courier(age_s=100)
    times = {
        "future": timezone.now() + timedelta(minutes=2),
        "stale": timezone.now() - timedelta(minutes=61),
    }
    extra = {k: times[v].isoformat() if v in times else v for k, v in extra.items()}
    before = (courier.location, courier.location_updated_at)
    response = as_user(courier.user).post(PING, {"lat": 52.5, "lng": 13.3, **extra})
    assert response.status_code == 400
    assert list(response.json()) == list(extra)
    assert track_rows(courier.pk) == []
    courier.refresh_from_db()
    assert (courier.location, courier.location_updated_at) == before


def test_a_ping_within_the_clock_skew_is_taken_without_dating_the_courier_ahead(
    as_user, make_courier
):
    courier = make_courier(age_s=100)
    ahead = timezone.now() + timedelta(seconds=20)
    response = as_user(courier.user).post(
        PING, {"lat": 52.5, "lng": 13.3, "recorded_at": ahead.isoformat()}
    )
    assert response.status_code == 200
    assert [row[0] for row in track_rows(courier.pk)] == [ahead]
    courier.refresh_from_db()
    assert courier.location_updated_at <= timezone.now() < ahead


def test_a_late_ping_is_kept_without_moving_the_courier(as_user, make_courier):
    courier = make_courier(lat=52.52, lng=13.405, age_s=60)
    current = courier.location_updated_at
    late = current - timedelta(seconds=1)
    response = as_user(courier.user).post(
        PING, {"lat": 52.4, "lng": 13.2, "recorded_at": late.isoformat()}
    )
    assert response.status_code == 200
    body = response.json()
    assert datetime.fromisoformat(body["recorded_at"]) == late
    assert datetime.fromisoformat(body["location_updated_at"]) == current
    assert [row[:3] for row in track_rows(courier.pk)] == [(late, 52.4, 13.2)]
    courier.refresh_from_db()
    assert (courier.location.y, courier.location.x) == (52.52, 13.405)
    assert courier.location_updated_at == current
    # A ping as old as the current point is not late: it moves the courier.
    as_user(courier.user).post(PING, {"lat": 52.3, "lng": 13.1, "recorded_at": current.isoformat()})
    courier.refresh_from_db()
    assert (courier.location.y, courier.location.x) == (52.3, 13.1)


def test_a_ping_taken_before_the_current_point_by_a_clock_ahead_does_not_move_the_courier(
    as_user, make_courier
):
    courier = make_courier(lat=52.52, lng=13.405, age_s=60)
    client = as_user(courier.user)
    now = timezone.now()
    first, second = now + timedelta(seconds=25), now + timedelta(seconds=10)
    client.post(PING, {"lat": 52.6, "lng": 13.6, "recorded_at": first.isoformat()})
    courier.refresh_from_db()
    current = courier.location_updated_at
    # Taken 15 s before the current point by the same clock: late, though it is not
    # older than the current point's time as the server dates it (its own clock's now).
    late = client.post(PING, {"lat": 52.7, "lng": 13.7, "recorded_at": second.isoformat()})
    assert late.status_code == 200, late.content
    assert datetime.fromisoformat(late.json()["location_updated_at"]) == current
    assert [row[:3] for row in track_rows(courier.pk)] == [
        (second, 52.7, 13.7),
        (first, 52.6, 13.6),
    ]
    courier.refresh_from_db()
    assert (courier.location.y, courier.location.x, courier.location_updated_at) == (
        52.6,
        13.6,
        current,
    )
    # A ping taken after the current point, by that clock, moves the courier.
    client.post(PING, {"lat": 52.8, "lng": 13.8, "recorded_at": first.isoformat()})
    courier.refresh_from_db()
    assert (courier.location.y, courier.location.x) == (52.8, 13.8)


# --- the operator's read ----------------------------------------------------------------


def track_url(courier_id: int) -> str:
    return f"/api/v1/couriers/{courier_id}/track/"


def path_length(points) -> float:
    """The WGS84 geodesic length through (_, lat, lng) points, by pyproj, not PostGIS."""
    return sum(GEOD.inv(a[2], a[1], b[2], b[1])[2] for a, b in pairwise(points))


def test_the_track_is_in_time_order_with_its_geodesic_length(as_user, make_courier):
    courier = make_courier()
    other = make_courier()
    now = timezone.now()
    # Sent out of order; points a few km apart across Berlin, and one far east.
    points = [
        (-50, 52.52, 13.405),
        (-70, 52.50, 13.30),
        (-10, 52.47, 13.45),
        (-30, 52.55, 13.38),
        (-20, 51.0, 20.0),
    ]
    for minutes, lat, lng in points:
        courier_ping(
            user=courier.user,
            lat=lat,
            lng=lng,
            heading=90.5,
            speed_mps=3.25,
            accuracy_m=5.0,
            recorded_at=now + timedelta(minutes=minutes),
        )
    courier_ping(user=other.user, lat=0, lng=0, recorded_at=now - timedelta(minutes=40))
    operator = as_user(factories.user(is_staff=True))
    response = operator.get(track_url(courier.pk))
    assert response.status_code == 200, response.json()
    body = response.json()
    ordered = sorted(points)
    assert [p["location"] for p in body["points"]] == [
        {"type": "Point", "coordinates": [lng, lat]} for _, lat, lng in ordered
    ]
    assert [datetime.fromisoformat(p["recorded_at"]) for p in body["points"]] == [
        now + timedelta(minutes=m) for m, _, _ in ordered
    ]
    assert {(p["heading"], p["speed_mps"], p["accuracy_m"]) for p in body["points"]} == {
        (90.5, 3.25, 5.0)
    }
    assert body["distance_m"] == pytest.approx(path_length(ordered), abs=1e-3)
    assert body["truncated"] is False

    # A window: since and until are inclusive.
    window = operator.get(
        track_url(courier.pk),
        {
            "since": (now - timedelta(minutes=50)).isoformat(),
            "until": (now - timedelta(minutes=20)).isoformat(),
        },
    ).json()
    inside = [p for p in ordered if -50 <= p[0] <= -20]
    assert [p["location"]["coordinates"] for p in window["points"]] == [
        [lng, lat] for _, lat, lng in inside
    ]
    assert window["distance_m"] == pytest.approx(path_length(inside), abs=1e-3)


def test_the_default_window_is_the_last_day(as_user, make_courier):
    courier = make_courier()
    now = timezone.now()
    courier_ping(user=courier.user, lat=52.0, lng=13.0, recorded_at=now - timedelta(hours=25))
    courier_ping(user=courier.user, lat=52.1, lng=13.1, recorded_at=now - timedelta(hours=23))
    body = as_user(factories.user(is_staff=True)).get(track_url(courier.pk)).json()
    assert [p["location"]["coordinates"] for p in body["points"]] == [[13.1, 52.1]]
    assert body["distance_m"] == 0  # a single point has no length
    only_until = (
        as_user(factories.user(is_staff=True))
        .get(track_url(courier.pk), {"until": (now - timedelta(hours=24)).isoformat()})
        .json()
    )
    assert [p["location"]["coordinates"] for p in only_until["points"]] == [[13.0, 52.0]]


@pytest.mark.parametrize("until", ["0001-01-01T00:00:00Z", "0001-01-01T23:59:59.999999Z"])
def test_a_window_ending_at_the_first_day_python_holds_starts_there(as_user, make_courier, until):
    courier = make_courier()
    courier_ping(user=courier.user, lat=52.0, lng=13.0)
    response = as_user(factories.user(is_staff=True)).get(track_url(courier.pk), {"until": until})
    assert response.status_code == 200, response.content
    assert (response.json()["points"], response.json()["distance_m"]) == ([], 0)


def test_a_window_ending_before_it_starts_is_400(as_user, make_courier):
    courier = make_courier()
    now = timezone.now()
    response = as_user(factories.user(is_staff=True)).get(
        track_url(courier.pk),
        {"since": now.isoformat(), "until": (now - timedelta(seconds=1)).isoformat()},
    )
    assert response.status_code == 400
    assert list(response.json()) == ["since"]


@pytest.mark.parametrize(
    "points",
    [
        # antipodes on the equator, then a point off the line through them
        [(0.0, 0.0), (0.0, 180.0), (10.0, 0.0)],
        # pole to pole, then to the equator; then across the antimeridian
        [(90.0, 0.0), (-90.0, 0.0), (0.0, -180.0), (0.0, 179.9999), (0.0001, -179.9999)],
        # round the north pole
        [(89.9999, 0.0), (89.9999, 180.0), (89.9999, 90.0), (90.0, 45.0)],
    ],
)
def test_the_length_is_geodesic_over_antipodes_poles_and_the_antimeridian(
    as_user, make_courier, points
):
    """Two consecutive points at antipodes are a valid path (each leg a geodesic): PostGIS
    refused to make a line of three or more such points a geography ("Antipodal edge"),
    and the track answered 503 for the day these pings were in."""
    courier = make_courier()
    now = timezone.now()
    for seconds, (lat, lng) in enumerate(points):
        courier_ping(
            user=courier.user,
            lat=lat,
            lng=lng,
            recorded_at=now - timedelta(seconds=len(points) - seconds),
        )
    response = as_user(factories.user(is_staff=True)).get(track_url(courier.pk))
    assert response.status_code == 200, response.content
    body = response.json()
    assert [p["location"]["coordinates"] for p in body["points"]] == [
        [lng, lat] for lat, lng in points
    ]
    ordered = [(0, lat, lng) for lat, lng in points]
    assert body["distance_m"] == pytest.approx(path_length(ordered), abs=1e-3)


def test_the_track_stops_at_its_cap_and_says_so(as_user, make_courier, monkeypatch):
    from delivery import selectors

    monkeypatch.setattr(selectors, "TRACK_POINTS_MAX", 2)
    courier = make_courier()
    now = timezone.now()
    for minutes, lng in ((-3, 13.0), (-2, 13.01), (-1, 13.02)):
        courier_ping(
            user=courier.user, lat=52.0, lng=lng, recorded_at=now + timedelta(minutes=minutes)
        )
    body = as_user(factories.user(is_staff=True)).get(track_url(courier.pk)).json()
    assert [p["location"]["coordinates"][0] for p in body["points"]] == [13.0, 13.01]
    assert body["truncated"] is True
    # The length is the whole window's path.
    assert body["distance_m"] == pytest.approx(GEOD.inv(13.0, 52.0, 13.02, 52.0)[2], abs=1e-3)


@pytest.mark.parametrize("role", ["anonymous", "customer", "courier", "owner"])
def test_only_operators_read_tracks(as_user, make_courier, role):
    courier = make_courier()
    courier_ping(user=courier.user, lat=52.0, lng=13.0)
    users = {
        "anonymous": None,
        "customer": factories.user(),
        "courier": courier.user,
        "owner": factories.merchant().owner,
    }
    response = as_user(users[role]).get(track_url(courier.pk))
    assert response.status_code == (401 if role == "anonymous" else 403)
    assert "points" not in response.json()


def test_an_unknown_courier_has_no_track(as_user, make_courier, django_assert_num_queries):
    courier = make_courier()
    operator = as_user(factories.user(is_staff=True))
    operator.get(track_url(courier.pk))
    # The courier is looked up by the track's own statement, after the caller's token.
    with django_assert_num_queries(2):
        assert operator.get(track_url(courier.pk + 1000)).status_code == 404
    with django_assert_num_queries(2):
        assert operator.get(track_url(courier.pk)).status_code == 200
    # An unknown courier is a 404 before its window is a 400.
    now = timezone.now()
    backwards = {"since": now.isoformat(), "until": (now - timedelta(seconds=1)).isoformat()}
    assert operator.get(track_url(courier.pk + 1000), backwards).status_code == 404
    assert operator.get(track_url(courier.pk), backwards).status_code == 400


# --- partitions and retention -------------------------------------------------------------


def test_pings_of_different_days_land_in_their_days_partitions(make_courier):
    courier = make_courier()
    courier_track_partitions_maintain()
    now = timezone.now()
    times = [now, now - timedelta(days=1)]
    for at in times:
        courier_ping(user=courier.user, lat=52.0, lng=13.0, recorded_at=at)
    assert partition_of_rows(courier.pk) == {
        at: day_partition(at.astimezone(UTC).date()) for at in times
    }


def test_a_day_without_a_partition_waits_in_the_default_one_until_it_has_one(make_courier):
    courier = make_courier()
    at = timezone.now() - timedelta(days=20)
    courier_ping(user=courier.user, lat=52.0, lng=13.0, recorded_at=at)
    assert partition_of_rows(courier.pk) == {at: "delivery_courierping_default"}
    ensure_partitions(at.astimezone(UTC).date(), 1)
    assert partition_of_rows(courier.pk) == {at: day_partition(at.astimezone(UTC).date())}


def test_retention_drops_whole_old_partitions_and_keeps_recent_ones(make_courier, settings):
    settings.COURIER_TRACK_RETENTION_DAYS = 30
    courier = make_courier()
    now = timezone.now()
    today = now.astimezone(UTC).date()
    ensure_partitions(today - timedelta(days=40), 10)  # days -40 .. -31
    ensure_partitions(today - timedelta(days=30), 1)
    old = now - timedelta(days=35)
    in_default = now - timedelta(days=33)  # day -33 has a partition: moved out below
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE " + day_partition(in_default.astimezone(UTC).date()))
    kept_whole = datetime.combine(today - timedelta(days=30), datetime.min.time(), UTC)
    for at in (old, in_default, kept_whole, now):
        courier_ping(user=courier.user, lat=52.0, lng=13.0, recorded_at=at)
    assert partition_of_rows(courier.pk)[in_default] == "delivery_courierping_default"

    courier_track_partitions()

    remaining = partitions()
    for days_ago in range(40, 30, -1):
        assert day_partition(today - timedelta(days=days_ago)) not in remaining
    # Day -30 ends less than 30 days ago: kept whole, as are yesterday to a week ahead.
    for days_ago in (30, 1, 0, -7):
        assert day_partition(today - timedelta(days=days_ago)) in remaining
    assert "delivery_courierping_default" in remaining
    assert set(partition_of_rows(courier.pk)) == {kept_whole, now}
