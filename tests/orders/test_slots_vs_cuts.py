"""Orders for a delivery slot while the merchant cuts its slots otherwise (another plan,
other hours, another time zone): a booking keeps the window it was booked for and takes
room in every new slot it overlaps, however the order and the change interleave. Each
race is made certain: a transaction is held open in a thread, and the other side goes on
until it finishes or PostgreSQL shows it waiting for that transaction."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from geomarket.sql import own_connection_params
from merchants.services import merchant_update, slot_plan_set
from tests import factories
from tests.market import ORDERS, api_client_as, build_market, order_body
from tests.threads import TIMEOUT_SECONDS, Worker

pytestmark = pytest.mark.django_db(transaction=True)


def plan(shop, *, slot_minutes: int) -> None:
    slot_plan_set(
        merchant=shop, slot_minutes=slot_minutes, capacity=1, lead_minutes=0, horizon_days=3
    )


def tomorrow_at(hour: int, minute: int = 0, tz=UTC) -> datetime:
    day = (timezone.now().astimezone(tz) + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def place(market, starts_at: datetime, product, quantity: int):
    """An order of its own product for the slot at `starts_at`: orders of one product
    would queue on its stock row before they reached the slot."""
    body = order_body(market, (product, quantity))
    body["slot_starts_at"] = starts_at.isoformat()
    return api_client_as(market["customer"]).post(ORDERS, body, format="json")


def listed(market, starts_at: datetime) -> tuple[int, int]:
    """`booked, available` of the slot starting at `starts_at` in its day's slot list."""
    day = api_client_as(None).get(
        f"/api/v1/merchants/{market['shop'].pk}/slots/",
        {"date": str(starts_at.astimezone(ZoneInfo(market["shop"].timezone)).date())},
    )
    [slot] = [slot for slot in day.json() if datetime.fromisoformat(slot["starts_at"]) == starts_at]
    return slot["booked"], slot["available"]


class OpenTransaction:
    """`work` run in a transaction of its own in a thread, kept open after it until
    `commit()`."""

    def __init__(self, work: Callable[[], Any]):
        self._work = work
        self._started = threading.Event()
        self.worked = threading.Event()
        self._commit = threading.Event()
        self.result: Any = None
        self.worker = Worker(self._run)
        self.worker.start()
        assert self._started.wait(TIMEOUT_SECONDS)

    def _run(self) -> Any:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # Asked of the server: through a pooler, the client's pid is not the
                    # session's.
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
                self._started.set()
                self.result = self._work()
                self.worked.set()
                assert self._commit.wait(TIMEOUT_SECONDS)
        finally:
            self._started.set()
            self.worked.set()
        return self.result

    def worked_result(self) -> Any:
        assert self.worked.wait(TIMEOUT_SECONDS)
        assert self.worker.is_alive(), self.worker.outcome()
        return self.result

    def commit(self) -> Any:
        self._commit.set()
        return self.worker.outcome()


def until_done_or_waiting_on(done: Callable[[], bool], holder: OpenTransaction) -> None:
    """Return once `done()`, or once a session waits for a lock `holder` holds."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    with psycopg.connect(**own_connection_params(), autocommit=True) as observer:

        def waiting() -> bool:
            return bool(
                observer.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    [holder.pid],
                ).fetchone()
            )

        while not done() and not waiting():
            assert holder.worker.is_alive(), holder.worker.outcome()
            assert time.monotonic() < deadline, "neither done nor waiting"
            time.sleep(0.01)


@dataclass(frozen=True)
class Cut:
    """Slots of capacity 1 cut one way (`before`), then another (`after`): the new slot
    at `new` overlaps the old one at `old`."""

    before: Callable[[Any], None]
    old: Callable[[], datetime]
    after: Callable[[Any], None]
    new: Callable[[], datetime]


def _berlin_hours(opens: str) -> Callable[[Any], None]:
    return lambda shop: factories.hours(shop, *((day, opens, "20:00") for day in range(7)))


BERLIN = ZoneInfo("Europe/Berlin")
CUTS = {
    # 12:30-13:00 lies in 12:00-13:00.
    "plan": Cut(
        before=lambda shop: plan(shop, slot_minutes=30),
        old=lambda: tomorrow_at(12, 30),
        after=lambda shop: plan(shop, slot_minutes=60),
        new=lambda: tomorrow_at(12),
    ),
    # Hours from 08:00, then from 08:15: 09:00-10:00 overlaps 09:15-10:15.
    "hours": Cut(
        before=lambda shop: (_berlin_hours("08:00")(shop), plan(shop, slot_minutes=60)),
        old=lambda: tomorrow_at(9, tz=BERLIN),
        after=_berlin_hours("08:15"),
        new=lambda: tomorrow_at(9, 15, tz=BERLIN),
    ),
    # Always open, cut from the local midnight: of UTC, then of India (UTC+05:30).
    "time zone": Cut(
        before=lambda shop: plan(shop, slot_minutes=60),
        old=lambda: tomorrow_at(12),
        after=lambda shop: merchant_update(merchant=shop, data={"timezone": "Asia/Kolkata"}),
        new=lambda: tomorrow_at(11, 30),
    ),
}


@pytest.mark.parametrize("cut", CUTS.values(), ids=CUTS.keys())
def test_an_order_in_flight_as_the_slots_change_counts_in_the_new_slots(cut):
    market = build_market(api_client_as)
    shop = market["shop"]
    cut.before(shop)
    old = OpenTransaction(lambda: place(market, cut.old(), market["bread"], 2))
    assert old.worked_result().status_code == 201, old.result.json()
    # The change, then at once an order for the new slot, while the old order has booked
    # and not committed: each goes on until it is done or waits for the old order.
    change = Worker(lambda: cut.after(shop))
    new = Worker(lambda: (change.outcome(), place(market, cut.new(), market["milk"], 4))[1])
    change.start()
    new.start()
    until_done_or_waiting_on(lambda: not new.is_alive(), old)
    old.commit()
    change.outcome()
    answer = new.outcome()
    assert listed(market, cut.new()) == (1, 0)
    assert answer.status_code == 409, answer.json()
    assert answer.json()["code"] == "slot_full"


def test_an_order_booking_as_the_slots_change_books_from_the_new_slots():
    market = build_market(api_client_as)
    shop = market["shop"]
    plan(shop, slot_minutes=30)
    noon, half_past = tomorrow_at(12), tomorrow_at(12, 30)
    change = OpenTransaction(lambda: plan(shop, slot_minutes=60))
    change.worked_result()
    # Its context read sees the old plan, which offers 12:30; its booking comes as the
    # change is about to commit.
    old = OpenTransaction(lambda: place(market, half_past, market["bread"], 2))
    until_done_or_waiting_on(old.worked.is_set, change)
    change.commit()
    old.worked_result()
    new = place(market, noon, market["milk"], 4)
    refused = old.commit()
    assert listed(market, noon) == (1, 0)
    assert new.status_code == 201, new.json()
    assert refused.status_code == 400, refused.json()
    assert list(refused.json()) == ["slot_starts_at"]
