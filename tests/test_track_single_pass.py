"""The track's one-pass statement (`delivery.selectors.COURIER_TRACK_JSON_SQL`): its
aggregates read the points in the window function's order without sorting them again,
so its answer is, to the byte, the points in (time, longitude, latitude) order rendered
by the shape, and the length of the line through them in that order."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from delivery import selectors
from delivery.services import courier_create
from delivery.shapes import TRACK_POINT
from tests import factories

pytestmark = pytest.mark.django_db

ORDERED = "ORDER BY recorded_at, ST_X(location::geometry), ST_Y(location::geometry)"


def expected(courier_id: int, since, until, limit: int) -> bytes:
    """The answer built by plain reads, each ordered explicitly."""
    window = {"courier": courier_id, "since": since, "until": until}
    where = (
        "WHERE courier_id = %(courier)s AND recorded_at >= %(since)s AND recorded_at <= %(until)s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {TRACK_POINT.json_sql(alias='p')} FROM delivery_courierping p"  # noqa: S608
            f" {where} {ORDERED}",
            window,
        )
        points = [row[0] for row in cursor.fetchall()]
        line = f"ST_MakeLine(array_agg(location::geometry {ORDERED}))"
        cursor.execute(
            f"SELECT round(COALESCE({selectors.PATH_LENGTH_SQL.format(line=line)}, 0)"  # noqa: S608
            f"::numeric, 3)::text FROM delivery_courierping {where}",
            window,
        )
        (distance,) = cursor.fetchone()
    truncated = "true" if len(points) > limit else "false"
    body = (
        f'{{"points":[{",".join(points[:limit])}],"distance_m":{distance},"truncated":{truncated}}}'
    )
    return body.encode()


@pytest.fixture
def shuffled_track(db):
    """A courier's points sent in random order, many sharing their instant (and a few
    their instant and longitude), some without accuracy."""
    courier = courier_create(user=factories.user(), name="Rider", vehicle="bike", capacity=1)
    rng = random.Random(18)
    now = timezone.now().replace(microsecond=0)
    rows = []
    for i in range(600):
        at = now - timedelta(hours=23) + timedelta(seconds=rng.randrange(0, 40_000, 40))
        lng = 13.3 + rng.randrange(0, 50) / 1000
        lat = 52.4 + rng.random() / 10
        accuracy = None if i % 7 == 0 else rng.randrange(1, 80) / 4
        rows.append(
            (courier.pk, at, f"SRID=4326;POINT({lng!r} {lat!r})", i % 360, i % 13, accuracy)
        )
    rng.shuffle(rows)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO delivery_courierping"
            " (courier_id, recorded_at, location, heading, speed_mps, accuracy_m)"
            " VALUES (%s, %s, %s::geography, %s, %s, %s)",
            rows,
        )
    return courier, now


def test_the_answer_is_the_ordered_points_and_their_line(shuffled_track, monkeypatch):
    courier, now = shuffled_track
    windows = [
        (now - timedelta(hours=24), now),
        (now - timedelta(hours=20), now - timedelta(hours=18)),
        (now + timedelta(hours=1), now + timedelta(hours=2)),  # no point
    ]
    for limit in (selectors.TRACK_POINTS_MAX, 37, 1):
        monkeypatch.setattr(selectors, "TRACK_POINTS_MAX", limit)
        for since, until in windows:
            body = selectors.courier_track_json(courier_id=courier.pk, since=since, until=until)
            assert body == expected(courier.pk, since, until, limit), (limit, since, until)


def test_a_courier_that_does_not_exist_has_no_answer(shuffled_track):
    courier, now = shuffled_track
    assert (
        selectors.courier_track_json(
            courier_id=courier.pk + 1000, since=now - timedelta(days=1), until=now
        )
        is None
    )
