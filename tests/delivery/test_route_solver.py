"""The route planner's rules on random instances, with both solvers: each pickup before its
drop-off, never more on board than the capacity, picked-up orders dropped only, slots kept
when some plan keeps them and flagged late otherwise. Travel tables are made up here (the
planner takes any table); the API's tests use PostGIS's and OSRM's."""

import io
import itertools
import json
import math
import random
import threading
import time

import pytest

from delivery import route_solver, routes
from delivery.eta import TravelTable
from delivery.routes import (
    RouteProblem,
    RouteStop,
    route_greedy,
    route_sequence,
    route_timing,
    route_valid,
)
from delivery.shapes import RouteSolver, StopKind

SEEDS = range(40)


def random_problem(
    rng: random.Random, *, orders: int, capacity: int, on_board: int = 0, start: bool = True
) -> RouteProblem:
    """`orders` orders around a 6 km square, the first `on_board` of them picked up;
    travel at 5 m/s in straight lines."""
    points = [(rng.uniform(0, 6000), rng.uniform(0, 6000))] if start else []
    stops = []
    for order_id in range(1, orders + 1):
        if order_id > on_board:
            points.append((rng.uniform(0, 6000), rng.uniform(0, 6000)))
            stops.append(RouteStop(order_id=order_id, kind=StopKind.PICKUP, point=len(points) - 1))
        points.append((rng.uniform(0, 6000), rng.uniform(0, 6000)))
        stops.append(RouteStop(order_id=order_id, kind=StopKind.DROPOFF, point=len(points) - 1))
    distances = [[math.dist(a, b) for b in points] for a in points]
    return RouteProblem(
        stops=tuple(stops),
        table=TravelTable(
            durations_s=[[round(d / 5) for d in row] for row in distances], distances_m=distances
        ),
        start=0 if start else None,
        capacity=max(capacity, on_board),
    )


def with_slots(problem: RouteProblem, slots: dict[int, tuple[int, int]]) -> RouteProblem:
    """`problem` with the drop-offs of the orders of `slots` in those (opens, closes)."""
    return RouteProblem(
        stops=tuple(
            RouteStop(stop.order_id, stop.kind, stop.point, *slots[stop.order_id])
            if stop.kind == StopKind.DROPOFF and stop.order_id in slots
            else stop
            for stop in problem.stops
        ),
        table=problem.table,
        start=problem.start,
        capacity=problem.capacity,
    )


def assert_rules_hold(problem: RouteProblem, sequence: list[int]) -> None:
    stops = [problem.stops[index] for index in sequence]
    assert sorted(sequence) == list(range(len(problem.stops)))
    carried = set(problem.on_board)
    for stop in stops:
        if stop.kind == StopKind.PICKUP:
            assert stop.order_id not in carried
            carried.add(stop.order_id)
        else:
            assert stop.order_id in carried, "a drop-off before its pickup"
            carried.remove(stop.order_id)
        assert len(carried) <= problem.capacity, "more on board than the capacity"
    assert not carried


def instance(seed: int, **options) -> RouteProblem:
    rng = random.Random(seed)
    orders = rng.randint(1, 8)
    return random_problem(
        rng,
        orders=orders,
        capacity=rng.randint(1, 4),
        on_board=rng.randint(0, min(orders, 3)),
        **options,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_vroom_plans_keep_precedence_and_capacity(seed):
    problem = instance(seed)
    sequence, solver = route_sequence(problem, seconds=5)
    assert solver == RouteSolver.VROOM
    assert_rules_hold(problem, sequence)


@pytest.mark.parametrize("seed", SEEDS)
def test_greedy_plans_keep_precedence_and_capacity(seed):
    problem = instance(seed)
    assert_rules_hold(problem, route_greedy(problem))


@pytest.mark.parametrize("seed", range(10))
def test_a_courier_without_a_location_starts_at_its_first_stop(seed):
    problem = instance(seed, start=False)
    for sequence in (route_sequence(problem, seconds=5)[0], route_greedy(problem)):
        assert_rules_hold(problem, sequence)
        first = route_timing(problem, sequence)[0]
        assert (first.at_s, first.distance_m) == (0, 0.0)


def test_the_rules_check_refuses_what_breaks_them():
    problem = random_problem(random.Random(1), orders=2, capacity=1)
    pickup_1, dropoff_1, pickup_2, dropoff_2 = range(4)
    assert route_valid(problem, [pickup_1, dropoff_1, pickup_2, dropoff_2])
    assert not route_valid(problem, [dropoff_1, pickup_1, pickup_2, dropoff_2])
    assert not route_valid(problem, [pickup_1, pickup_2, dropoff_1, dropoff_2])
    assert not route_valid(problem, [pickup_1, dropoff_1, pickup_2])


def test_picked_up_orders_are_only_dropped():
    problem = random_problem(random.Random(3), orders=3, capacity=3, on_board=2)
    sequence, _ = route_sequence(problem, seconds=5)
    kinds = {(problem.stops[i].order_id, problem.stops[i].kind) for i in sequence}
    assert kinds == {
        (1, StopKind.DROPOFF),
        (2, StopKind.DROPOFF),
        (3, StopKind.PICKUP),
        (3, StopKind.DROPOFF),
    }


def test_a_full_courier_drops_before_it_picks_up():
    problem = random_problem(random.Random(4), orders=3, capacity=1, on_board=1)
    for sequence in (route_sequence(problem, seconds=5)[0], route_greedy(problem)):
        assert problem.stops[sequence[0]].kind == StopKind.DROPOFF
        assert_rules_hold(problem, sequence)


def _slots_one_plan_keeps(problem: RouteProblem, rng: random.Random) -> dict:
    """Slots around the times of a random valid plan: some plan keeps them all."""
    timed = route_timing(problem, route_greedy(problem))
    return {
        item.stop.order_id: (max(0, item.at_s - rng.randint(0, 300)), item.at_s + 60)
        for item in timed
        if item.stop.kind == StopKind.DROPOFF and rng.random() < 0.6
    }


@pytest.mark.parametrize("seed", range(20))
def test_slots_are_kept_when_some_plan_keeps_them(seed):
    rng = random.Random(seed)
    problem = instance(seed)
    problem = with_slots(problem, _slots_one_plan_keeps(problem, rng))
    sequence, solver = route_sequence(problem, seconds=5)
    assert solver == RouteSolver.VROOM
    assert_rules_hold(problem, sequence)
    for item in route_timing(problem, sequence):
        assert not item.late
        if item.stop.opens_s is not None:
            assert item.stop.opens_s <= item.at_s <= item.stop.closes_s


def test_vroom_orders_the_stops_by_the_slots():
    # Two orders on board: the nearer drop-off first is shorter, but the farther one's
    # slot closes before the courier could get there through the nearer one.
    problem = random_problem(random.Random(5), orders=2, capacity=2, on_board=2)
    near, far = sorted(range(2), key=lambda i: problem.table.durations_s[0][problem.stops[i].point])
    direct = problem.table.durations_s[0][problem.stops[far].point]
    problem = with_slots(problem, {problem.stops[far].order_id: (0, direct + 1)})
    sequence, solver = route_sequence(problem, seconds=5)
    assert (sequence, solver) == ([far, near], RouteSolver.VROOM)
    assert not any(item.late for item in route_timing(problem, sequence))


def test_a_slot_no_plan_keeps_is_flagged_late():
    problem = random_problem(random.Random(6), orders=3, capacity=3)
    reach = problem.table.durations_s[0][problem.stops[1].point]
    # Order 1's slot closes before its drop-off can be reached; order 2's is over.
    problem = with_slots(problem, {1: (0, reach // 2), 2: (0, -60)})
    sequence, solver = route_sequence(problem, seconds=5)
    assert solver == RouteSolver.VROOM
    assert_rules_hold(problem, sequence)
    late = {item.stop.order_id for item in route_timing(problem, sequence) if item.late}
    assert late == {1, 2}


def test_a_drop_off_waits_for_its_slot_to_open():
    problem = random_problem(random.Random(7), orders=1, capacity=1, on_board=1)
    problem = with_slots(problem, {1: (7200, 9000)})
    for sequence in (route_sequence(problem, seconds=5)[0], route_greedy(problem)):
        (item,) = route_timing(problem, sequence)
        assert (item.at_s, item.late) == (7200, False)


def test_a_solver_error_gives_the_greedy_plan(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(routes, "_vroom_sequence", broken)
    problem = instance(2)
    sequence, solver = route_sequence(problem, seconds=5)
    assert (sequence, solver) == (route_greedy(problem), RouteSolver.GREEDY)


def test_an_answer_breaking_a_rule_gives_the_greedy_plan(monkeypatch):
    monkeypatch.setattr(
        routes,
        "_vroom_sequence",
        lambda problem, **_: (list(range(len(problem.stops)))[::-1], frozenset()),
    )
    problem = instance(2)
    assert route_sequence(problem, seconds=5) == (route_greedy(problem), RouteSolver.GREEDY)


def test_no_time_budget_gives_the_greedy_plan():
    problem = instance(2)
    assert route_sequence(problem, seconds=0) == (route_greedy(problem), RouteSolver.GREEDY)


def test_nothing_to_plan():
    problem = RouteProblem(stops=(), table=TravelTable([], []), start=None, capacity=1)
    assert route_sequence(problem, seconds=1) == ([], RouteSolver.NONE)


def test_a_solve_past_its_budget_gives_the_greedy_plan(monkeypatch):
    monkeypatch.setattr(routes, "SOLVER_GRACE_SECONDS", -60)
    problem = instance(2)
    assert route_sequence(problem, seconds=5) == (route_greedy(problem), RouteSolver.GREEDY)


def test_a_late_answer_is_dropped_by_the_next_route(monkeypatch):
    solver = routes._solver_started()
    late = instance(2)
    monkeypatch.setattr(routes, "SOLVER_GRACE_SECONDS", -60)
    assert route_sequence(late, seconds=5)[1] == RouteSolver.GREEDY
    monkeypatch.undo()
    problem = instance(5)
    sequence, solver_name = route_sequence(problem, seconds=5)
    assert solver_name == RouteSolver.VROOM
    assert_rules_hold(problem, sequence)
    assert routes._solver is solver


def test_a_solver_process_that_died_is_started_again():
    problem = instance(3)
    dead = routes._solver_started()
    dead.process.kill()
    dead.process.wait()
    assert route_sequence(problem, seconds=5)[1] == RouteSolver.VROOM
    assert routes._solver.process.pid != dead.process.pid


def test_a_failing_solver_process_gives_the_greedy_plan_and_is_stopped(monkeypatch):
    def broken(self, request, *, timeout):
        raise ChildProcessError("the route solver ended")

    failing = routes._solver_started()
    monkeypatch.setattr(routes._Solver, "solve", broken)
    problem = instance(3)
    assert route_sequence(problem, seconds=5) == (route_greedy(problem), RouteSolver.GREEDY)
    assert failing.process.poll() is not None
    monkeypatch.undo()
    assert route_sequence(problem, seconds=5)[1] == RouteSolver.VROOM


def test_the_solver_process_answers_an_error_for_a_request_it_cannot_solve():
    answers = io.StringIO()
    route_solver.serve(io.StringIO('{"durations": "not a table"}\n'), answers)
    ready, answer = answers.getvalue().splitlines()
    assert ready == route_solver.READY
    assert "error" in json.loads(answer)


def test_the_server_process_runs_on_while_vroom_solves():
    # pyvroom holds the GIL while it solves: in the server's process it would stop every
    # other request. A thread of this process must keep running through a long solve.
    problem = random_problem(random.Random(8), orders=30, capacity=5, on_board=3)
    routes._solver_started()
    ticks, solving = [], threading.Event()

    def tick():
        while not solving.is_set():
            time.sleep(0.001)
        while solving.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    ticker = threading.Thread(target=tick)
    ticker.start()
    solving.set()
    started = time.perf_counter()
    _, solver = route_sequence(problem, seconds=5)
    took = time.perf_counter() - started
    solving.clear()
    ticker.join()
    assert solver == RouteSolver.VROOM
    assert took > 0.1
    assert max(b - a for a, b in itertools.pairwise([started, *ticks])) < took / 3
