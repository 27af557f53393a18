"""Orders placed for a delivery slot, and orders placed to deliver now: the slot is one
of the merchant's current slots (`merchants_slots`), booked in the order's transaction
and freed when the order is cancelled; without a slot the merchant must be open now."""

from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum
from django.utils import timezone

from inventory.models import Inventory
from merchants.models import SlotBooking
from merchants.services import _SLOT_BOOK_SQL, slot_plan_set
from orders.models import Order
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.threads import behind_an_uncommitted_write, run_in_threads

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def plan(shop, *, slot_minutes=30, capacity=10, lead_minutes=0, horizon_days=3):
    slot_plan_set(
        merchant=shop,
        slot_minutes=slot_minutes,
        capacity=capacity,
        lead_minutes=lead_minutes,
        horizon_days=horizon_days,
    )


def tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = (timezone.now() + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def for_slot(market, starts_at, *, quantity=2) -> dict:
    # Two loaves: the zone's minimum order is 5.00.
    body = order_body(market, (market["bread"], quantity))
    if starts_at is not None:
        body["slot_starts_at"] = starts_at.isoformat()
    return body


def booked(shop, starts_at) -> int:
    """What is booked in the rows of the windows starting at `starts_at`."""
    rows = SlotBooking.objects.filter(merchant=shop, starts_at=starts_at)
    return rows.aggregate(booked=Sum("booked"))["booked"] or 0


def windows(shop) -> dict[tuple[datetime, datetime], int]:
    """The merchant's booking rows: what is booked of each window."""
    rows = SlotBooking.objects.filter(merchant=shop)
    return {(row.starts_at, row.ends_at): row.booked for row in rows}


def place(market, starts_at):
    return market["client"].post(ORDERS, for_slot(market, starts_at), format="json")


def cancel(market, placed):
    answer = market["client"].post(
        f"{ORDERS}{placed.json()['id']}/status/", {"status": "cancelled"}, format="json"
    )
    assert answer.status_code == 200, answer.json()


def listed(market, starts_at) -> tuple[int, int]:
    """`booked, available` of the slot starting at `starts_at` in its day's slot list."""
    day = market["client"].get(
        f"/api/v1/merchants/{market['shop'].pk}/slots/", {"date": str(starts_at.date())}
    )
    [slot] = [slot for slot in day.json() if datetime.fromisoformat(slot["starts_at"]) == starts_at]
    return slot["booked"], slot["available"]


def refused_as_full(answer) -> bool:
    return answer.status_code == 409 and answer.json()["code"] == "slot_full"


@pytest.mark.django_db
def test_an_order_for_a_slot_books_it_and_shows_it(market):
    shop = market["shop"]
    plan(shop)
    starts_at = tomorrow_at(12)
    answer = market["client"].post(ORDERS, for_slot(market, starts_at), format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["slot_starts_at"] == starts_at.isoformat().replace("+00:00", "Z")
    assert body["slot_ends_at"] == (starts_at + timedelta(minutes=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert booked(shop, starts_at) == 1
    order = Order.objects.get(pk=body["id"])
    assert (order.slot_starts_at, order.slot_ends_at) == (
        starts_at,
        starts_at + timedelta(minutes=30),
    )
    # Every answer showing the order shows its slot: detail and list.
    assert market["client"].get(f"{ORDERS}{body['id']}/").json() == body
    listed = market["client"].get(ORDERS).json()["results"][0]
    assert listed["slot_starts_at"] == body["slot_starts_at"]
    assert listed["slot_ends_at"] == body["slot_ends_at"]
    # The slot list counts it.
    day = market["client"].get(
        f"/api/v1/merchants/{shop.pk}/slots/", {"date": str(starts_at.date())}
    )
    [slot] = [slot for slot in day.json() if slot["starts_at"] == body["slot_starts_at"]]
    assert (slot["booked"], slot["available"]) == (1, 9)


@pytest.mark.django_db
def test_an_order_for_a_slot_takes_one_statement_more(market, django_assert_num_queries):
    plan(market["shop"])
    # Those of an order to deliver now (test_place.py), and the booking: the slots' lock
    # and the booking's statement are sent as one query.
    with django_assert_num_queries(6):
        answer = place(market, tomorrow_at(12))
    assert answer.status_code == 201, answer.json()
    with django_assert_num_queries(5):
        answer = place(market, None)
    assert answer.status_code == 201, answer.json()


@pytest.mark.django_db
def test_an_order_without_a_slot_shows_none(market):
    answer = market["client"].post(ORDERS, for_slot(market, None), format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["slot_starts_at"] is None
    assert answer.json()["slot_ends_at"] is None


def next_slot_after_now() -> datetime:
    """The start of a slot (the half hours from midnight, UTC) 30 to 60 minutes away."""
    now = timezone.now()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(
        minutes=60 if now.minute < 30 else 90
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("starts_at", "plan_args", "closed"),
    [
        # slots start on the half hour from the local midnight
        (lambda: tomorrow_at(12, 10), {}, False),
        (lambda: tomorrow_at(12) - timedelta(days=2), {}, False),
        (lambda: tomorrow_at(12), {}, True),
        # the horizon is 3 days
        (lambda: tomorrow_at(12) + timedelta(days=3), {}, False),
        (next_slot_after_now, {"lead_minutes": 61}, False),
        (lambda: tomorrow_at(12), None, False),
    ],
    ids=["not-a-start", "past", "inside-a-closure", "beyond-horizon", "within-lead", "no-plan"],
)
def test_an_order_for_anything_but_a_current_slot_is_refused(market, starts_at, plan_args, closed):
    shop = market["shop"]
    if plan_args is not None:
        plan(shop, **plan_args)
    if closed:
        factories.closure(shop, tomorrow_at(11, 45).isoformat(), tomorrow_at(13).isoformat())
    answer = market["client"].post(ORDERS, for_slot(market, starts_at()), format="json")
    assert answer.status_code == 400
    assert list(answer.json()) == ["slot_starts_at"]
    assert not SlotBooking.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_a_slot_start_without_an_offset_is_refused(market):
    plan(market["shop"])
    body = for_slot(market, None)
    # Tomorrow's 12:00 UTC slot, spelled without its offset: a client in Berlin means 11:00.
    body["slot_starts_at"] = tomorrow_at(12).replace(tzinfo=None).isoformat()
    answer = market["client"].post(ORDERS, body, format="json")
    assert answer.status_code == 400
    assert list(answer.json()) == ["slot_starts_at"]
    assert "offset" in answer.json()["slot_starts_at"][0]
    assert not SlotBooking.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_the_slot_just_past_the_lead_time_is_taken(market):
    # The refusal above is the lead time's, not the slot's.
    plan(market["shop"], lead_minutes=0)
    answer = market["client"].post(ORDERS, for_slot(market, next_slot_after_now()), format="json")
    assert answer.status_code == 201, answer.json()


def test_an_order_to_deliver_now_from_a_closed_merchant_names_the_next_opening(market):
    shop = market["shop"]
    now = timezone.now()
    reopens = (now + timedelta(hours=2)).replace(microsecond=0)
    factories.closure(shop, (now - timedelta(hours=1)).isoformat(), reopens.isoformat())
    answer = market["client"].post(ORDERS, for_slot(market, None), format="json")
    assert answer.status_code == 400
    [message] = answer.json()["merchant_id"]
    assert message.startswith("closed")
    assert reopens.isoformat().replace("+00:00", "Z") in message
    assert not Order.objects.exists()
    # A slot after the closure is still for sale.
    plan(shop)
    answer = market["client"].post(ORDERS, for_slot(market, tomorrow_at(12)), format="json")
    assert answer.status_code == 201, answer.json()


def test_the_next_opening_follows_the_weekly_hours(market):
    shop = market["shop"]
    berlin = ZoneInfo("Europe/Berlin")
    # Open only the day after tomorrow, Berlin time: closed now, opening at 08:00 then.
    day = (timezone.now().astimezone(berlin) + timedelta(days=2)).date()
    factories.hours(shop, (day.weekday(), "08:00", "20:00"))
    answer = market["client"].post(ORDERS, for_slot(market, None), format="json")
    assert answer.status_code == 400
    opens = datetime(day.year, day.month, day.day, 8, tzinfo=berlin).astimezone(UTC)
    [message] = answer.json()["merchant_id"]
    assert f"next opening {opens.isoformat().replace('+00:00', 'Z')}" in message


def test_a_merchant_closed_for_over_14_days_says_so(market):
    now = timezone.now()
    factories.closure(
        market["shop"],
        (now - timedelta(hours=1)).isoformat(),
        (now + timedelta(days=20)).isoformat(),
    )
    answer = market["client"].post(ORDERS, for_slot(market, None), format="json")
    assert answer.status_code == 400
    [message] = answer.json()["merchant_id"]
    assert message.startswith("closed")
    assert "no opening within 14 days" in message


def test_a_full_slot_is_refused_with_409_and_nothing_is_taken(market):
    shop = market["shop"]
    plan(shop, capacity=1)
    starts_at = tomorrow_at(12)
    first = market["client"].post(ORDERS, for_slot(market, starts_at), format="json")
    assert first.status_code == 201
    second = market["client"].post(ORDERS, for_slot(market, starts_at, quantity=3), format="json")
    assert second.status_code == 409
    assert second.json()["code"] == "slot_full"
    assert second.json()["detail"]
    assert booked(shop, starts_at) == 1
    assert Order.objects.count() == 1
    # The refused order's stock was put back with the rest of its transaction.
    assert Inventory.objects.get(product=market["bread"]).quantity == 18


def test_cancelling_frees_the_booking(market):
    shop = market["shop"]
    plan(shop, capacity=1)
    starts_at = tomorrow_at(12)
    placed = market["client"].post(ORDERS, for_slot(market, starts_at), format="json").json()
    assert booked(shop, starts_at) == 1
    cancelled = market["client"].post(
        f"{ORDERS}{placed['id']}/status/", {"status": "cancelled"}, format="json"
    )
    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["slot_starts_at"] == placed["slot_starts_at"]
    assert booked(shop, starts_at) == 0
    again = market["client"].post(ORDERS, for_slot(market, starts_at), format="json")
    assert again.status_code == 201


def test_an_idempotency_key_reused_for_another_slot_is_refused(market):
    plan(market["shop"])
    key = {"HTTP_IDEMPOTENCY_KEY": "slot-key"}
    first = market["client"].post(ORDERS, for_slot(market, tomorrow_at(12)), format="json", **key)
    assert first.status_code == 201
    again = market["client"].post(ORDERS, for_slot(market, tomorrow_at(12)), format="json", **key)
    assert again.json()["id"] == first.json()["id"]
    other = market["client"].post(
        ORDERS, for_slot(market, tomorrow_at(12, 30)), format="json", **key
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_orders_for_a_slot_of_ten_book_exactly_ten():
    market = build_market(api_client_as)
    shop = market["shop"]
    Inventory.objects.filter(product=market["bread"]).update(quantity=200)
    plan(shop, capacity=10)
    starts_at = tomorrow_at(12)
    body = for_slot(market, starts_at)
    clients = [api_client_as(factories.user()) for _ in range(50)]

    def place(client):
        answer = client.post(ORDERS, body, format="json")
        return answer.status_code, answer.json()

    answers = run_in_threads(*[partial(place, client) for client in clients])
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 10, statuses
    assert statuses.count(409) == 40, statuses
    assert all(answer["code"] == "slot_full" for status, answer in answers if status == 409)
    assert booked(shop, starts_at) == 10
    assert Order.objects.filter(slot_starts_at=starts_at, status="confirmed").count() == 10
    assert Inventory.objects.get(product=market["bread"]).quantity == 180


# A merchant may cut its hours otherwise while orders hold its slots: a booking keeps the
# window it was booked for and takes room in every slot that window overlaps.


def test_a_longer_plan_counts_the_bookings_of_the_shorter_slots_it_covers(market):
    shop = market["shop"]
    plan(shop, capacity=3)
    noon, half_past, one = tomorrow_at(12), tomorrow_at(12, 30), tomorrow_at(13)
    for starts_at in (noon, half_past, one):
        assert place(market, starts_at).status_code == 201
    plan(shop, slot_minutes=60, capacity=3)
    # 12:00-12:30 and 12:30-13:00 lie in 12:00-13:00; 13:00-13:30 only touches it.
    assert listed(market, noon) == (2, 1)
    assert listed(market, one) == (1, 2)
    assert place(market, noon).status_code == 201
    assert refused_as_full(place(market, noon))
    assert listed(market, noon) == (3, 0)
    hour, half_hour = timedelta(hours=1), timedelta(minutes=30)
    assert windows(shop) == {
        (noon, noon + half_hour): 1,
        (half_past, half_past + half_hour): 1,
        (one, one + half_hour): 1,
        (noon, noon + hour): 1,
    }


def test_hours_moved_by_a_quarter_count_the_bookings_of_the_old_slots(market):
    shop = market["shop"]
    berlin = ZoneInfo("Europe/Berlin")
    day = (timezone.now().astimezone(berlin) + timedelta(days=1)).date()
    factories.hours(shop, *((weekday, "08:00", "20:00") for weekday in range(7)))
    plan(shop, slot_minutes=60, capacity=2)
    nine = datetime(day.year, day.month, day.day, 9, tzinfo=berlin)
    for _ in range(2):
        assert place(market, nine).status_code == 201
    # The openings now start at 08:15: slots 08:15-09:15, 09:15-10:15, 10:15-11:15, ...
    factories.hours(shop, *((weekday, "08:15", "20:00") for weekday in range(7)))
    quarter = timedelta(minutes=15)
    assert listed(market, nine - 3 * quarter) == (2, 0)
    assert listed(market, nine + quarter) == (2, 0)
    assert listed(market, nine + 5 * quarter) == (0, 2)
    assert refused_as_full(place(market, nine - 3 * quarter))
    assert refused_as_full(place(market, nine + quarter))
    assert place(market, nine + 5 * quarter).status_code == 201


def test_cancelling_a_booking_of_an_old_slot_frees_the_new_one_by_its_own_row(market):
    shop = market["shop"]
    plan(shop, capacity=3)
    noon, half_past = tomorrow_at(12), tomorrow_at(12, 30)
    early = place(market, noon)
    assert early.status_code == 201
    assert place(market, half_past).status_code == 201
    plan(shop, slot_minutes=60, capacity=3)
    late = place(market, noon)
    assert late.status_code == 201
    assert refused_as_full(place(market, noon))
    # Two windows start at noon, 12:00-12:30 and 12:00-13:00: each order gives back its own.
    cancel(market, early)
    hour, half_hour = timedelta(hours=1), timedelta(minutes=30)
    assert windows(shop) == {
        (noon, noon + half_hour): 0,
        (half_past, half_past + half_hour): 1,
        (noon, noon + hour): 1,
    }
    assert listed(market, noon) == (2, 1)
    assert place(market, noon).status_code == 201
    cancel(market, late)
    assert windows(shop) == {
        (noon, noon + half_hour): 0,
        (half_past, half_past + half_hour): 1,
        (noon, noon + hour): 1,
    }
    assert listed(market, noon) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_two_orders_for_the_last_place_of_a_slot_over_old_bookings_book_one():
    market = build_market(api_client_as)
    shop = market["shop"]
    plan(shop, capacity=2)
    half_past = tomorrow_at(12, 30)
    assert place(market, half_past).status_code == 201
    plan(shop, slot_minutes=60, capacity=2)
    noon = tomorrow_at(12)
    # Another order has booked the slot's last place and not committed: this order's
    # statement does not see that booking, waits on its row, and must then find it full.
    loser = behind_an_uncommitted_write(
        _SLOT_BOOK_SQL,
        {"merchant_id": shop.pk, "slot_starts_at": noon},
        partial(place, market, noon),
    )
    assert refused_as_full(loser), loser.json()
    assert windows(shop) == {
        (half_past, half_past + timedelta(minutes=30)): 1,
        (noon, noon + timedelta(hours=1)): 1,
    }
    assert Order.objects.count() == 1
