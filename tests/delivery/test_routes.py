"""POST couriers/{id}/route/ and couriers/me/route/ against PostGIS: what a plan holds,
who may ask for one, and the travel tables it is planned on (geodesic, OSRM's table
service, the geodesic one when OSRM fails)."""

from datetime import datetime, timedelta

import httpx
import pytest
from django.utils import timezone
from pyproj import Geod

from delivery import routes
from delivery.eta import configured_provider
from delivery.models import Courier
from orders.models import Order
from tests import factories
from tests.delivery.placing import one_item_order, stocked_shop
from tests.rows import rows

pytestmark = pytest.mark.django_db

WGS84 = Geod(ellps="WGS84")
ME = "/api/v1/couriers/me/route/"


def route_of(courier) -> str:
    return f"/api/v1/couriers/{courier.pk}/route/"


@pytest.fixture
def give(make_courier):
    """`give(courier, status=..., east_deg=..., north_deg=..., slot=...)`: an order of a
    shop of its own, `north_deg` north of Berlin, delivered `east_deg` east of the shop,
    assigned to `courier` in `status`."""

    def make(courier, *, status="ready", east_deg=0.01, north_deg=0.0, slot=None):
        shop, item = stocked_shop()
        shop.location.y += north_deg
        type(shop).objects.filter(pk=shop.pk).update(location=shop.location)
        order = one_item_order(shop=shop, item=item, buyer=factories.user(), east_deg=east_deg)
        slot_starts_at, slot_ends_at = slot or (None, None)
        Order.objects.filter(pk=order.pk).update(
            courier=courier,
            status=status,
            slot_starts_at=slot_starts_at,
            slot_ends_at=slot_ends_at,
        )
        return Order.objects.select_related("merchant", "delivery_address").get(pk=order.pk)

    return make


def plan(client, path=ME) -> dict:
    response = client.post(path)
    assert response.status_code == 200, response.content
    return response.json()


def points(order) -> dict:
    return {
        "pickup": [order.merchant.location.x, order.merchant.location.y],
        "dropoff": [order.delivery_address.location.x, order.delivery_address.location.y],
    }


def geodesic_m(a: list[float], b: list[float]) -> float:
    return WGS84.inv(a[0], a[1], b[0], b[1])[2]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_each_order_is_picked_up_at_its_merchant_then_dropped_at_its_address(
    as_user, make_courier, give
):
    courier = make_courier(capacity=2)
    orders = {o.pk: o for o in (give(courier), give(courier, north_deg=0.01, east_deg=-0.01))}
    before = timezone.now()
    body = plan(as_user(courier.user))
    assert (body["solver"], body["provider"], body["degraded"]) == ("vroom", "geodesic", False)
    assert body["unplanned"] == []
    seen = [(stop["order_id"], stop["kind"]) for stop in body["stops"]]
    assert sorted(seen) == sorted((pk, kind) for pk in orders for kind in ("pickup", "dropoff"))
    for pk in orders:
        assert seen.index((pk, "pickup")) < seen.index((pk, "dropoff"))
    for stop in body["stops"]:
        assert stop["location"] == {
            "type": "Point",
            "coordinates": points(orders[stop["order_id"]])[stop["kind"]],
        }
        assert stop["late"] is False
    times = [instant(stop["arrive_at"]) for stop in body["stops"]]
    assert all(stop["arrive_at"].endswith("Z") for stop in body["stops"])
    assert before <= times[0]
    assert times == sorted(times)
    assert body["total_duration_s"] == pytest.approx((times[-1] - before).total_seconds(), abs=2)


def test_distances_are_geodesic_legs_from_the_couriers_point(as_user, make_courier, give, settings):
    courier = make_courier(capacity=3, lat=52.51, lng=13.39)
    for north in (0.0, 0.005, -0.007):
        give(courier, north_deg=north)
    body = plan(as_user(courier.user))
    here = [courier.location.x, courier.location.y]
    speed = settings.ETA_SPEEDS_M_PER_S[courier.vehicle]
    elapsed = 0
    start = instant(body["stops"][0]["arrive_at"])
    for stop in body["stops"]:
        there = stop["location"]["coordinates"]
        assert stop["distance_m"] == pytest.approx(geodesic_m(here, there), abs=0.5)
        if stop is not body["stops"][0]:
            elapsed += round(geodesic_m(here, there) / speed)
            assert (instant(stop["arrive_at"]) - start).total_seconds() == pytest.approx(
                elapsed, abs=1
            )
        here = there
    assert body["total_distance_m"] == pytest.approx(
        sum(stop["distance_m"] for stop in body["stops"]), abs=0.01
    )
    first_leg = round(
        geodesic_m(
            [courier.location.x, courier.location.y], body["stops"][0]["location"]["coordinates"]
        )
        / speed
    )
    assert body["total_duration_s"] == pytest.approx(first_leg + elapsed, abs=1)


def test_a_picked_up_order_has_only_its_drop_off(as_user, make_courier, give):
    courier = make_courier(capacity=2)
    carried, waiting = give(courier, status="picked_up"), give(courier, status="confirmed")
    body = plan(as_user(courier.user))
    assert sorted((stop["order_id"], stop["kind"]) for stop in body["stops"]) == sorted(
        [(carried.pk, "dropoff"), (waiting.pk, "pickup"), (waiting.pk, "dropoff")]
    )


def test_a_courier_at_capacity_drops_off_before_picking_up(as_user, make_courier, give):
    courier = make_courier(capacity=1)
    carried = give(courier, status="picked_up", east_deg=0.015)
    waiting = [give(courier, status=s, north_deg=0.002) for s in ("confirmed", "preparing")]
    body = plan(as_user(courier.user))
    on_board = {carried.pk}
    for stop in body["stops"]:
        if stop["kind"] == "pickup":
            on_board.add(stop["order_id"])
        else:
            on_board.remove(stop["order_id"])
        assert len(on_board) <= 1
    assert {stop["order_id"] for stop in body["stops"]} == {carried.pk, *(o.pk for o in waiting)}


def test_no_active_orders_is_an_empty_plan(as_user, make_courier, give):
    courier = make_courier()
    give(courier, status="delivered")
    give(courier, status="cancelled")
    assert plan(as_user(courier.user)) == {
        "stops": [],
        "total_distance_m": 0.0,
        "total_duration_s": 0,
        "solver": "none",
        "provider": "geodesic",
        "degraded": False,
        "unplanned": [],
    }


def test_a_slot_is_kept_waiting_for_it_to_open(as_user, make_courier, give):
    courier = make_courier()
    now = timezone.now()
    slot = (now + timedelta(hours=2), now + timedelta(hours=2, minutes=30))
    order = give(courier, status="picked_up", slot=slot)
    (stop,) = plan(as_user(courier.user))["stops"]
    assert (stop["order_id"], stop["late"]) == (order.pk, False)
    assert slot[0] <= instant(stop["arrive_at"]) <= slot[1]


@pytest.mark.parametrize(
    "third_ends_in",
    [None, timedelta(minutes=-1), timedelta(seconds=5)],
    ids=["alone", "beside-a-slot-over", "beside-a-slot-no-plan-keeps"],
)
def test_slots_reorder_the_stops_when_that_keeps_them(as_user, make_courier, give, third_ends_in):
    # The near drop-off first is the shorter plan, but the far one's slot ends before the
    # courier could get there through the near one. A third order whose slot ended a
    # minute ago, or ends before the courier could get there (200 m in 5 s), is late
    # whatever the plan: it must not cost the far one its slot.
    courier = make_courier(capacity=3)
    now = timezone.now()
    near = give(courier, status="picked_up", east_deg=0.002)
    far = give(courier, status="picked_up", east_deg=-0.015)
    to_far = geodesic_m([courier.location.x, courier.location.y], points(far)["dropoff"]) / 4.2
    far_slot = (now - timedelta(minutes=5), now + timedelta(seconds=to_far + 20))
    Order.objects.filter(pk=far.pk).update(slot_starts_at=far_slot[0], slot_ends_at=far_slot[1])
    over = third_ends_in is not None and give(
        courier,
        status="picked_up",
        east_deg=0.003,
        slot=(now - timedelta(hours=1), now + third_ends_in),
    )
    body = plan(as_user(courier.user))
    assert body["solver"] == "vroom"
    late = {stop["order_id"]: stop["late"] for stop in body["stops"]}
    assert late == {far.pk: False, near.pk: False, **({over.pk: True} if over else {})}
    kept = [stop["order_id"] for stop in body["stops"] if not stop["late"]]
    assert kept == [far.pk, near.pk]


def test_a_slot_no_plan_keeps_is_late(as_user, make_courier, give):
    courier = make_courier(capacity=2)
    now = timezone.now()
    over = give(
        courier, status="picked_up", slot=(now - timedelta(hours=1), now - timedelta(minutes=1))
    )
    kept = give(courier, status="picked_up", east_deg=0.005, slot=(now, now + timedelta(hours=1)))
    body = plan(as_user(courier.user))
    late = {stop["order_id"]: stop["late"] for stop in body["stops"]}
    assert late == {over.pk: True, kept.pk: False}


def test_a_solver_failure_answers_the_greedy_plan(as_user, make_courier, give, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(routes, "_vroom_sequence", broken)
    courier = make_courier(capacity=2)
    orders = [give(courier), give(courier, north_deg=0.004)]
    body = plan(as_user(courier.user))
    assert body["solver"] == "greedy"
    seen = [(stop["order_id"], stop["kind"]) for stop in body["stops"]]
    assert len(seen) == 4
    for order in orders:
        assert seen.index((order.pk, "pickup")) < seen.index((order.pk, "dropoff"))


def test_no_time_budget_answers_the_greedy_plan(as_user, make_courier, give, settings):
    settings.ROUTE_SOLVE_SECONDS = 0
    courier = make_courier(capacity=2)
    give(courier)
    assert plan(as_user(courier.user))["solver"] == "greedy"


def test_orders_beyond_the_cap_are_unplanned(as_user, make_courier, give, settings):
    settings.ROUTE_MAX_ORDERS = 2
    courier = make_courier(capacity=3)
    waiting = give(courier, status="confirmed")
    carried = [give(courier, status="picked_up", north_deg=n) for n in (0.001, 0.002)]
    body = plan(as_user(courier.user))
    assert body["unplanned"] == [waiting.pk]
    assert {stop["order_id"] for stop in body["stops"]} == {o.pk for o in carried}


def test_a_courier_without_a_location_starts_at_its_first_stop(as_user, make_courier, give):
    courier = make_courier()
    Courier.objects.filter(pk=courier.pk).update(location=None, location_updated_at=None)
    give(courier, status="picked_up")
    (stop,) = plan(as_user(courier.user))["stops"]
    assert stop["distance_m"] == 0


def test_who_may_plan_a_route(as_user, make_courier, give):
    courier, other = make_courier(capacity=2), make_courier()
    give(courier)
    owner_order = give(courier, north_deg=0.003)
    state = (rows(Order), rows(Courier))
    assert as_user(None).post(route_of(courier)).status_code == 401
    assert as_user(None).post(ME).status_code == 401
    for stranger in (factories.user(), owner_order.merchant.owner, owner_order.buyer, other.user):
        assert as_user(stranger).post(route_of(courier)).status_code == 403
    for not_a_courier in (factories.user(), owner_order.merchant.owner):
        assert as_user(not_a_courier).post(ME).status_code == 403
    operator = as_user(factories.user(is_staff=True))
    answers = [
        plan(operator, route_of(courier)),
        plan(as_user(courier.user), route_of(courier)),
        plan(as_user(courier.user)),
    ]
    assert all(len(answer["stops"]) == 4 for answer in answers)
    assert plan(as_user(other.user))["stops"] == []
    assert operator.post("/api/v1/couriers/999999/route/").status_code == 404
    assert operator.get(route_of(courier)).status_code == 405
    assert (rows(Order), rows(Courier)) == state


class FakeOsrm:
    """OSRM's table service: road distances 1.3 times the geodesic ones, at 3 m/s."""

    def __init__(self, *, status: int = 200):
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"code": "Error"})
        _, _, _, profile, coordinates = request.url.path.split("/", 4)
        assert profile == "bike"
        assert request.url.params["annotations"] == "duration,distance"
        places = [[float(n) for n in pair.split(",")] for pair in coordinates.split(";")]
        distances = [[1.3 * geodesic_m(a, b) for b in places] for a in places]
        return httpx.Response(
            200,
            json={
                "code": "Ok",
                "durations": [[d / 3 for d in row] for row in distances],
                "distances": distances,
            },
        )


@pytest.fixture
def osrm(settings):
    """The configured provider is OSRM, its table service `FakeOsrm`: `osrm(status=...)`."""
    settings.ETA_PROVIDER = "osrm"
    provider = configured_provider()

    def serve(**options) -> FakeOsrm:
        fake = FakeOsrm(**options)
        provider.table_client = httpx.Client(
            transport=httpx.MockTransport(fake), base_url="http://osrm.test"
        )
        return fake

    yield serve
    provider.table_client = None


def test_travel_comes_from_osrm_table_when_configured(as_user, make_courier, give, osrm):
    fake = osrm()
    courier = make_courier(capacity=2)
    give(courier)
    give(courier, north_deg=0.004)
    body = plan(as_user(courier.user))
    assert (body["provider"], body["degraded"], body["solver"]) == ("osrm", False, "vroom")
    assert len(fake.requests) == 1
    here = [courier.location.x, courier.location.y]
    start = instant(body["stops"][0]["arrive_at"])
    elapsed = 0
    for stop in body["stops"]:
        there = stop["location"]["coordinates"]
        assert stop["distance_m"] == pytest.approx(1.3 * geodesic_m(here, there), abs=0.01)
        if stop is not body["stops"][0]:
            elapsed += round(1.3 * geodesic_m(here, there) / 3)
            assert (instant(stop["arrive_at"]) - start).total_seconds() == pytest.approx(
                elapsed, abs=1
            )
        here = there


def test_a_failing_osrm_gives_the_geodesic_table(as_user, make_courier, give, osrm):
    fake = osrm(status=503)
    courier = make_courier()
    give(courier, status="picked_up")
    body = plan(as_user(courier.user))
    assert (body["provider"], body["degraded"]) == ("geodesic", True)
    assert len(fake.requests) == 1
    (stop,) = body["stops"]
    here = [courier.location.x, courier.location.y]
    assert stop["distance_m"] == pytest.approx(
        geodesic_m(here, stop["location"]["coordinates"]), abs=0.5
    )


@pytest.mark.parametrize(
    ("durations", "distances"),
    [
        pytest.param(-60, 100.0, id="a negative duration"),
        pytest.param(10**15, 100.0, id="a duration past any date"),
        pytest.param(60, float("nan"), id="a NaN distance"),
        pytest.param(60, None, id="distances a point short"),
    ],
)
def test_a_table_no_plan_can_be_timed_on_gives_the_geodesic_table(
    as_user, make_courier, give, osrm, durations, distances
):
    osrm()
    provider = configured_provider()

    def answer(request: httpx.Request) -> httpx.Response:
        size = len(request.url.path.rsplit("/", 1)[1].split(";"))
        return httpx.Response(
            200,
            json={
                "code": "Ok",
                "durations": [[durations] * size for _ in range(size)],
                "distances": [
                    [100.0] * (size - 1) if distances is None else [distances] * size
                    for _ in range(size)
                ],
            },
        )

    provider.table_client = httpx.Client(
        transport=httpx.MockTransport(answer), base_url="http://osrm.test"
    )
    courier = make_courier(capacity=2)
    give(courier)
    give(courier, north_deg=0.004)
    before = timezone.now()
    body = plan(as_user(courier.user))
    assert (body["provider"], body["degraded"]) == ("geodesic", True)
    arrivals = [instant(stop["arrive_at"]) for stop in body["stops"]]
    assert arrivals == sorted(arrivals)
    assert before <= arrivals[0] <= arrivals[-1] < before + timedelta(hours=1)
