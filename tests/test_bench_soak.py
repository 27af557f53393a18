"""The soak's checks of live delivery, given made-up data: a missing or foreign webhook
delivery, a bad signature, and a courier's point shown to someone who may not see it;
and its check of the analytics rollups against the orders."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from standardwebhooks import Webhook

from analytics.models import MerchantDay
from bench.soak.checks import feed_skipped, rollups_check
from bench.soak.streams import Shown, SseReader, location_leaks, status_at
from bench.soak.webhooks import (
    Delivery,
    Endpoint,
    EventRow,
    deliveries_compare,
    delivery_lags,
    signature_valid,
)
from tests.analytics.test_rollups import _random_history, clock  # noqa: F401

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)


def _delivery(event_id: int, *, path: str = "/all", secret: str = SECRET) -> Delivery:
    body = f'{{"type":"order.placed","data":{{"id":{event_id}}}}}'
    signature = Webhook(secret).sign(str(event_id), T0, body)
    return Delivery(path, str(event_id), str(int(T0.timestamp())), signature, body)


def _endpoint(**kwargs) -> Endpoint:
    fields = {
        "name": "all",
        "id": 1,
        "secret": SECRET,
        "path": "/all",
        "merchant_id": None,
        "event_types": (),
        "healthy": True,
    }
    return Endpoint(**{**fields, **kwargs})


EVENTS = [
    EventRow(1, 10, "order.placed"),  # before the mark
    EventRow(2, 10, "order.placed"),
    EventRow(3, 11, "order.status_changed"),
    EventRow(4, 10, "order.assigned"),
]


def test_every_event_got_at_least_once_passes():
    deliveries = [_delivery(2), _delivery(3), _delivery(3), _delivery(4)]

    check = deliveries_compare(
        endpoint=_endpoint(), events=EVENTS, after_id=1, deliveries=deliveries
    )

    assert check.passed
    assert (check.expected, check.received, check.distinct, check.duplicates) == (3, 4, 3, 1)


def test_a_missing_delivery_is_flagged():
    check = deliveries_compare(
        endpoint=_endpoint(), events=EVENTS, after_id=1, deliveries=[_delivery(2), _delivery(4)]
    )

    assert not check.passed
    assert check.missing == [3]


def test_another_endpoints_deliveries_do_not_count():
    deliveries = [_delivery(2), _delivery(3, path="/owner"), _delivery(4)]

    check = deliveries_compare(
        endpoint=_endpoint(), events=EVENTS, after_id=1, deliveries=deliveries
    )

    assert check.missing == [3]


def test_a_scoped_endpoint_expects_its_merchants_types_only_and_flags_others():
    owner = _endpoint(path="/owner", merchant_id=10, event_types=("order.placed",))

    fine = deliveries_compare(
        endpoint=owner, events=EVENTS, after_id=1, deliveries=[_delivery(2, path="/owner")]
    )
    foreign = deliveries_compare(
        endpoint=owner,
        events=EVENTS,
        after_id=1,
        deliveries=[_delivery(n, path="/owner") for n in (2, 3, 4, 99)],
    )

    assert fine.passed
    assert fine.expected == 1
    assert not foreign.passed
    assert foreign.foreign == [
        "event 3 (order.status_changed, merchant 11)",
        "event 4 (order.assigned, merchant 10)",
        "webhook-id '99': no such event",
    ]


def test_a_delivery_signed_with_another_secret_is_flagged():
    other = "whsec_" + "A" * 32
    deliveries = [_delivery(2), _delivery(3, secret=other), _delivery(4)]

    check = deliveries_compare(
        endpoint=_endpoint(), events=EVENTS, after_id=1, deliveries=deliveries
    )

    assert not check.passed
    assert check.unsigned == ["webhook-id '3'"]


def test_the_signature_is_checked_on_the_exact_body():
    delivery = _delivery(2)
    changed = Delivery(
        delivery.path, delivery.id, delivery.timestamp, delivery.signature, delivery.body + " "
    )

    assert signature_valid(secret=SECRET, delivery=delivery)
    assert not signature_valid(secret=SECRET, delivery=changed)


def test_the_sse_reader_gives_messages_and_skips_comments():
    reader = SseReader()
    lines = [": keep-alive", "", "id: 5-0", "event: status", 'data: {"status":"ready"}', ""]
    lines += ["id: 6-0", "event: location", "data: {", "data: }", ""]

    messages = [m for m in map(reader.line, lines) if m is not None]

    assert [(m.id, m.event, m.data) for m in messages] == [
        ("5-0", "status", '{"status":"ready"}'),
        ("6-0", "location", "{\n}"),
    ]


HISTORY = {
    7: [
        (T0, "confirmed"),
        (T0 + timedelta(seconds=10), "preparing"),
        (T0 + timedelta(seconds=20), "ready"),
        (T0 + timedelta(seconds=30), "picked_up"),
        (T0 + timedelta(seconds=40), "delivered"),
    ]
}


def _point(role: str, seconds: float, entry: str = "1-0") -> Shown:
    recorded_at = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    data = {"courier_id": 3, "location": {}, "recorded_at": recorded_at}
    return Shown(role, 7, entry, "location", data, at=seconds)


def test_status_at_takes_the_last_change_made_by_then():
    changes = HISTORY[7]

    assert status_at(changes, T0 - timedelta(microseconds=1)) is None
    assert status_at(changes, T0 + timedelta(seconds=30)) == "picked_up"
    assert status_at(changes, T0 + timedelta(seconds=30) - timedelta(microseconds=1)) == "ready"


def test_a_customer_shown_a_point_outside_picked_up_is_a_leak():
    shown = [_point("customer", 35, "1-0"), _point("customer", 25, "2-0")]
    statuses = {(7, "1-0"): "picked_up", (7, "2-0"): "picked_up"}

    leaks, restricted, verified = location_leaks(
        shown=shown, entry_statuses=statuses, history=HISTORY
    )

    assert (restricted, verified) == (2, 2)
    assert len(leaks) == 1
    assert "point 2-0" in leaks[0]
    assert "the order was ready" in leaks[0]


def test_a_point_its_ping_read_outside_the_roles_statuses_is_a_leak():
    shown = [_point("customer", 35, "1-0"), _point("owner", 25, "2-0"), _point("owner", 15, "3-0")]
    statuses = {(7, "1-0"): "ready", (7, "2-0"): "ready", (7, "3-0"): "preparing"}

    leaks, _, _ = location_leaks(shown=shown, entry_statuses=statuses, history=HISTORY)

    assert [leak.split(": ")[0].split()[-1] for leak in leaks] == ["1-0", "3-0"]
    assert "its ping read ready" in leaks[0]
    assert "its ping read preparing" in leaks[1]


def test_couriers_and_operators_see_every_point():
    shown = [_point("courier", 5), _point("operator", 45)]
    statuses = {(7, "1-0"): "confirmed"}

    leaks, restricted, _ = location_leaks(shown=shown, entry_statuses=statuses, history=HISTORY)

    assert leaks == []
    assert restricted == 0


def test_an_event_the_feed_passed_without_giving_is_flagged():
    # The reader got 1, 2 and 4: 3 committed after 4 and came too late for its cursor.
    assert feed_skipped([1, 2, 3, 4, 5], [1, 2, 4]) == [3]
    # 5 is past where the reader got to: not skipped, only not read yet.
    assert feed_skipped([1, 2, 4, 5], [1, 2, 4]) == []
    assert feed_skipped([1, 2], []) == []


def test_a_delivery_lag_counts_the_first_arrival_at_that_endpoint():
    written = {2: 100.0, 3: 100.0, 4: 100.0}
    deliveries = [
        replace(_delivery(2), at=103.0),
        replace(_delivery(2), at=105.0),
        replace(_delivery(3, path="/owner"), at=101.0),
        replace(_delivery(4), at=130.0),
    ]

    assert delivery_lags(written=written, deliveries=deliveries, path="/all") == [3.0, 30.0]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(2))
def test_the_rollups_check_holds_on_random_histories_and_flags_a_day_kept_wrong(clock, seed):  # noqa: F811
    _random_history(random.Random(seed), clock)

    def rows(sql: str, params=None) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    check = rollups_check(rows)
    assert check.passed, check.detail
    assert " 0 failed " not in check.detail
    day = MerchantDay.objects.filter(failed__gt=0).order_by("merchant_id", "day").first()
    MerchantDay.objects.filter(pk=day.pk).update(failed=day.failed - 1)
    check = rollups_check(rows)
    assert not check.passed
    assert f"merchant {day.merchant_id} on {day.day}" in check.detail
