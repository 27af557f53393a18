"""Priority assignment is the exact optimum of its problem: the solver against a dense
reference (every pair's geodesic, SciPy's assignment), alone and through the service on
PostGIS, and the same answer for the same state."""

import random
from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone
from scipy.optimize import linear_sum_assignment

from delivery.assignment import NEAREST, assignment_solve, chords, earth_centred, reach_band
from delivery.services import orders_assign_priority
from merchants.models import Merchant
from orders.models import Order
from tests import factories
from tests.delivery.placing import one_item_order
from tests.geo_fixtures import GEOD, random_point

# Unassigned in the dense reference: worth more than any total distance of its instances.
UNASSIGNED = 1e12


def dense_optimum(
    *, orders: list, couriers: list, free: list[int], reach: float
) -> tuple[int, float]:
    """Orders assigned and their total distance in the optimum over every pair. Points
    are (lng, lat), orders oldest first. The orders to assign are taken oldest first, each
    when it can have a courier together with those taken before (a perfect assignment of
    them to slots in reach exists); then they go to slots (each courier repeated `free`
    times) at least cost."""
    n, k = len(orders), len(couriers)
    o = np.repeat(np.array(orders, dtype=float), k, axis=0)
    c = np.tile(np.array(couriers, dtype=float), (n, 1))
    distance = GEOD.inv(o[:, 0], o[:, 1], c[:, 0], c[:, 1])[2].reshape(n, k)
    slot = np.repeat(np.arange(k), free)
    in_reach = distance[:, slot] <= reach
    taken: list[int] = []
    for order in range(n):
        trial = [*taken, order]
        if len(trial) <= len(slot):
            misses = np.where(in_reach[trial], 0.0, 1.0)
            rows, columns = linear_sum_assignment(misses)
            if misses[rows, columns].sum() == 0:
                taken = trial
    if not taken:
        return 0, 0.0
    cost = np.where(in_reach[taken], distance[taken][:, slot], UNASSIGNED)
    rows, columns = linear_sum_assignment(cost)
    assert (cost[rows, columns] < UNASSIGNED).all()
    return len(taken), float(cost[rows, columns].sum())


def solve(*, orders: list, couriers: list, free: list[int], reach: float):
    points_o, points_c = np.array(orders, dtype=float), np.array(couriers, dtype=float)

    def distances(rows, columns):
        o, c = points_o[rows], points_c[columns]
        return GEOD.inv(o[:, 0], o[:, 1], c[:, 0], c[:, 1])[2]

    return assignment_solve(
        pickups=earth_centred(*points_o.T),
        couriers=earth_centred(*points_c.T),
        free=free,
        reach=reach,
        distances=distances,
    )


def lng_lat(rng, *, radius_m: float) -> tuple[float, float]:
    lat, lng = random_point(rng, radius_m=radius_m)
    return lng, lat


def assert_valid(solved, *, orders, couriers, free, reach):
    given = solved.courier[solved.courier >= 0]
    assert (np.bincount(given, minlength=len(couriers)) <= free).all()
    for row in np.flatnonzero(solved.courier >= 0):
        (lng1, lat1), (lng2, lat2) = orders[row], couriers[solved.courier[row]]
        exact = GEOD.inv(lng1, lat1, lng2, lat2)[2]
        assert solved.distance_m[row] == pytest.approx(exact, abs=1e-6)
        assert exact <= reach


def test_a_chord_is_never_longer_than_its_geodesic_nor_shorter_than_the_band():
    rng = random.Random(5)
    for scale in (10.0, 1_000.0, 10_000.0, 100_000.0, 2_000_000.0):
        a = [lng_lat(rng, radius_m=scale) for _ in range(40)]
        b = [lng_lat(rng, radius_m=scale) for _ in range(40)]
        bound = chords(earth_centred(*np.array(a).T), earth_centred(*np.array(b).T))
        pa, pb = np.repeat(np.array(a), 40, axis=0), np.tile(np.array(b), (40, 1))
        geodesic = GEOD.inv(pa[:, 0], pa[:, 1], pb[:, 0], pb[:, 1])[2].reshape(40, 40)
        assert (bound <= geodesic).all()
        # and shorter by no more than the band that `reach_band` allows for
        assert (geodesic - bound <= reach_band(geodesic)).all()


@pytest.mark.parametrize("seed", range(40))
def test_the_solver_answers_the_dense_optimum(seed):
    rng = random.Random(seed)
    radius = rng.choice([1_500.0, 5_000.0, 15_000.0])
    orders = [lng_lat(rng, radius_m=radius) for _ in range(rng.randint(1, 40))]
    couriers = [lng_lat(rng, radius_m=radius) for _ in range(rng.randint(1, 30))]
    free = [rng.randint(1, 3) for _ in couriers]
    reach = rng.choice([800.0, 3_000.0, 10_000.0])
    solved = solve(orders=orders, couriers=couriers, free=free, reach=reach)
    count, total = dense_optimum(orders=orders, couriers=couriers, free=free, reach=reach)
    assert (solved.courier >= 0).sum() == count
    assert np.nansum(solved.distance_m) == pytest.approx(total, abs=1e-6)
    assert_valid(solved, orders=orders, couriers=couriers, free=free, reach=reach)


def test_the_solver_looks_past_each_orders_nearest_couriers_when_it_must():
    """Twelve orders at one shop, `NEAREST` couriers beside it and more 2 km away: four
    orders can only go to couriers that are nobody's nearest."""
    rng = random.Random(1)
    shop = (13.405, 52.52)
    orders = [shop] * (NEAREST + 4)
    near = [GEOD.fwd(*shop, rng.uniform(0, 360), rng.uniform(50, 150))[:2] for _ in range(NEAREST)]
    far = [GEOD.fwd(*shop, rng.uniform(0, 360), rng.uniform(1_900, 2_100))[:2] for _ in range(10)]
    couriers = near + far
    free = [1] * len(couriers)
    solved = solve(orders=orders, couriers=couriers, free=free, reach=5_000.0)
    count, total = dense_optimum(orders=orders, couriers=couriers, free=free, reach=5_000.0)
    assert solved.rounds > 1
    assert (solved.courier >= 0).sum() == count == len(orders)
    assert np.nansum(solved.distance_m) == pytest.approx(total, abs=1e-6)


def test_a_courier_standing_at_the_shop_gets_its_order():
    shop = (13.405, 52.52)
    couriers = [GEOD.fwd(*shop, 0, 1_000)[:2], shop]
    solved = solve(orders=[shop], couriers=couriers, free=[1, 1], reach=5_000.0)
    assert solved.courier.tolist() == [1]
    assert solved.distance_m.tolist() == [0.0]


def test_the_oldest_orders_in_reach_take_scarce_slots():
    shop = (13.405, 52.52)
    away = GEOD.fwd(*shop, 90, 30_000)[:2]
    orders = [away, shop, shop, shop]  # the oldest has no courier in reach
    couriers = [GEOD.fwd(*shop, 0, 100)[:2], GEOD.fwd(*shop, 180, 50)[:2]]
    solved = solve(orders=orders, couriers=couriers, free=[1, 1], reach=5_000.0)
    assert solved.courier.tolist()[0] == -1
    assert sorted(solved.courier.tolist()[1:3]) == [0, 1]
    assert solved.courier.tolist()[3] == -1


def test_an_order_left_no_courier_by_older_ones_lets_a_younger_one_have_its_slot():
    """The two oldest orders can only have the same courier; the youngest, far away, has
    one of its own: it gets it, and the second oldest waits."""
    shop, other = (13.405, 52.52), GEOD.fwd(13.405, 52.52, 90, 20_000)[:2]
    orders = [shop, shop, other]
    couriers = [GEOD.fwd(*shop, 0, 100)[:2], GEOD.fwd(*other, 0, 100)[:2]]
    solved = solve(orders=orders, couriers=couriers, free=[1, 1], reach=5_000.0)
    assert solved.courier.tolist() == [0, -1, 1]


# --- through the service, on PostGIS ------------------------------------------------------


def city_orders(rng, *, count: int, radius_m: float) -> list[Order]:
    """`count` confirmed orders at shops of their own, random over a disc, oldest first."""
    buyer = factories.user()
    placed = []
    for _ in range(count):
        lat, lng = random_point(rng, radius_m=radius_m)
        shop = factories.merchant(lat=lat, lng=lng)
        factories.zone(merchant=shop, min_order="0")
        item = factories.product(merchant=shop, price="1.00")
        factories.stock(product=item, quantity=5)
        placed.append(one_item_order(shop=shop, item=item, buyer=buyer, east_deg=0))
    return placed


def city_couriers(rng, make_courier, *, count: int, radius_m: float) -> list:
    couriers = []
    for _ in range(count):
        lat, lng = random_point(rng, radius_m=radius_m)
        couriers.append(make_courier(lat=lat, lng=lng, capacity=rng.randint(1, 3)))
    return couriers


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(3))
def test_the_service_answers_the_dense_optimum(seed, make_courier):
    rng = random.Random(seed)
    orders = city_orders(rng, count=18, radius_m=6_000)
    couriers = city_couriers(rng, make_courier, count=10, radius_m=6_000)
    # one courier already carries an order: one slot fewer
    Order.objects.filter(pk=orders[-1].pk).update(courier=couriers[0])
    orders = orders[:-1]
    free = [c.capacity - (1 if c is couriers[0] else 0) for c in couriers]
    reach = 4_000.0
    result = orders_assign_priority(max_distance_m=reach)

    shops = Merchant.objects.filter(pk__in=[o.merchant_id for o in orders])
    at = {shop.pk: (shop.location.x, shop.location.y) for shop in shops}
    points = {o.pk: at[o.merchant_id] for o in orders}
    oldest_first = [o.pk for o in sorted(orders, key=lambda o: (o.created_at, o.pk))]
    count, total = dense_optimum(
        orders=[points[pk] for pk in oldest_first],
        couriers=[(c.location.x, c.location.y) for c in couriers],
        free=free,
        reach=reach,
    )
    assert len(result.assignments) == count
    # each distance is answered to the centimetre
    assert result.total_distance_m == pytest.approx(total, abs=0.005 * count + 1e-6)
    per_courier = {}
    for a in result.assignments:
        per_courier[a["courier_id"]] = per_courier.get(a["courier_id"], 0) + 1
        courier = next(c for c in couriers if c.pk == a["courier_id"])
        exact = GEOD.inv(*points[a["order_id"]], courier.location.x, courier.location.y)[2]
        assert a["distance_m"] == pytest.approx(exact, abs=0.006)
        assert exact <= reach
    assert all(per_courier.get(c.pk, 0) <= f for c, f in zip(couriers, free, strict=True))


@pytest.mark.django_db
def test_the_same_state_gets_the_same_answer(make_courier):
    """Couriers waiting two by two at the same point tie: each call still gives each order
    the same one."""
    rng = random.Random(11)
    city_orders(rng, count=14, radius_m=3_000)
    for _ in range(5):
        lat, lng = random_point(rng, radius_m=3_000)
        make_courier(lat=lat, lng=lng, capacity=2)
        make_courier(lat=lat, lng=lng, capacity=2)
    answers = []
    for _ in range(4):
        with transaction.atomic():
            answers.append(orders_assign_priority())
            transaction.set_rollback(True)
    assert len(answers[0].assignments) == 14
    assert all(answer == answers[0] for answer in answers[1:])


@pytest.mark.django_db
def test_past_the_orders_a_call_takes_the_oldest_are_taken(make_courier, monkeypatch):
    """More orders wait than one call takes: the oldest are the ones it takes, whatever
    their ids."""
    monkeypatch.setattr("delivery.services.MAX_ORDERS_PER_ASSIGNMENT", 2)
    placed = city_orders(random.Random(2), count=4, radius_m=500)
    now = timezone.now()
    for order, age_minutes in zip(placed, [1, 20, 30, 10], strict=True):
        Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(minutes=age_minutes))
    lat, lng = random_point(random.Random(3), radius_m=100)
    make_courier(lat=lat, lng=lng, capacity=4)
    result = orders_assign_priority()
    assert [a["order_id"] for a in result.assignments] == [placed[2].pk, placed[1].pk]
