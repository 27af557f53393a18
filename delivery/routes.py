"""Couriers' multi-stop routes: in which order a courier makes the pickups and drop-offs
of its active orders, from where it is now. A plan, computed per request and stored
nowhere.

1. Read the courier (point, vehicle, capacity) and its active orders, picked-up ones
   first, then oldest first; the first `ROUTE_MAX_ORDERS` are planned, the others are
   answered as `unplanned`. A picked-up order has only its drop-off left; any other has
   its pickup at the merchant, then its drop-off at the delivery address.
2. Ask the ETA provider for its travel table between every two points (`EtaProvider.table`:
   geodesic by default, OSRM's table service when configured); a provider that fails
   gives the geodesic table, marked `degraded`.
3. Order the stops with VROOM (pyvroom, in process), within `ROUTE_SOLVE_SECONDS`:
   - capacity: an order takes a place from its pickup to its drop-off, a picked-up one
     from the start (a capacity below what is already on board is raised to it);
   - each pickup before its drop-off;
   - each slotted drop-off inside its slot. When VROOM cannot keep every slot, it solves
     again with the slots of the orders it left out kept only from their start, until it
     keeps the others: the stops it then makes after their slot's end are flagged `late`.
   The solve runs in a child process (`delivery.route_solver`: pyvroom holds the GIL).
   A solver error, an exhausted budget (the child not answering within it and a grace),
   or an answer that breaks a rule (checked by `route_valid`) gives the greedy plan
   instead (`route_greedy`), marked as such.
4. Time the sequence by one rule, whichever solver ordered it (`route_timing`).
"""

import itertools
import json
import logging
import math
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from delivery import route_solver
from delivery.eta import GeodesicProvider, TravelTable, configured_provider
from delivery.models import Courier
from delivery.shapes import ROUTE, RouteSolver, StopKind
from geomarket.shapes import coordinates, point_of
from orders.models import ACTIVE_DELIVERY_STATUSES, Order, OrderStatus

logger = logging.getLogger(__name__)

# A window's end when only its start is kept: later than any plan ends.
_NO_END = 2**31 - 1


@dataclass(frozen=True)
class RouteStop:
    """A stop to make at the point `point` (an index into the travel table). A drop-off
    in a slot may not be made before `opens_s` and is late after `closes_s` (seconds from
    the start of the plan; `closes_s` is negative for a slot already over)."""

    order_id: int
    kind: str
    point: int
    opens_s: int | None = None
    closes_s: int | None = None


@dataclass(frozen=True)
class RouteProblem:
    """The stops, the travel table between their points, the courier's point (`start`,
    an index; None when it has no location: the plan starts at its first stop), and the
    capacity, already at least the number of orders on board."""

    stops: tuple[RouteStop, ...]
    table: TravelTable
    start: int | None
    capacity: int

    @cached_property
    def on_board(self) -> frozenset[int]:
        """Orders picked up before the plan: a drop-off without a pickup."""
        pickups = {stop.order_id for stop in self.stops if stop.kind == StopKind.PICKUP}
        return frozenset(stop.order_id for stop in self.stops if stop.order_id not in pickups)


@dataclass(frozen=True)
class TimedStop:
    stop: RouteStop
    at_s: int
    distance_m: float
    late: bool


def route_timing(problem: RouteProblem, sequence: list[int]) -> list[TimedStop]:
    """The stops of `sequence` (indexes into `problem.stops`) in order, each with when it
    is made (seconds from the start: the arrival, or the slot's opening when the courier
    is early and waits), the leg's distance from the previous point, and whether it is
    after its slot's end."""
    timed, here, at = [], problem.start, 0
    for index in sequence:
        stop = problem.stops[index]
        if here is not None:
            at += problem.table.durations_s[here][stop.point]
        if stop.opens_s is not None:
            at = max(at, stop.opens_s)
        distance = 0.0 if here is None else problem.table.distances_m[here][stop.point]
        late = stop.closes_s is not None and at > stop.closes_s
        timed.append(TimedStop(stop=stop, at_s=at, distance_m=distance, late=late))
        here = stop.point
    return timed


def route_valid(problem: RouteProblem, sequence: list[int]) -> bool:
    """Every stop once, each pickup before its order's drop-off, and never more orders
    on board than the capacity."""
    if sorted(sequence) != list(range(len(problem.stops))):
        return False
    carried = set(problem.on_board)
    for index in sequence:
        stop = problem.stops[index]
        if stop.kind == StopKind.PICKUP:
            carried.add(stop.order_id)
            if len(carried) > problem.capacity:
                return False
        elif stop.order_id not in carried:
            return False
        else:
            carried.remove(stop.order_id)
    return True


def route_greedy(problem: RouteProblem) -> list[int]:
    """Each next stop the one made soonest (travel, then any wait for its slot) among
    those allowed: a drop-off of an order on board, a pickup while there is room."""
    carried = set(problem.on_board)
    left = set(range(len(problem.stops)))
    sequence, here, at = [], problem.start, 0

    def made_at(index: int) -> int:
        stop = problem.stops[index]
        arrival = at if here is None else at + problem.table.durations_s[here][stop.point]
        return max(arrival, stop.opens_s or 0)

    while left:
        allowed = [
            index
            for index in left
            if (problem.stops[index].kind == StopKind.PICKUP and len(carried) < problem.capacity)
            or (
                problem.stops[index].kind == StopKind.DROPOFF
                and problem.stops[index].order_id in carried
            )
        ]
        index = min(allowed, key=lambda index: (made_at(index), index))
        stop = problem.stops[index]
        at = made_at(index)
        if stop.kind == StopKind.PICKUP:
            carried.add(stop.order_id)
        else:
            carried.discard(stop.order_id)
        sequence.append(index)
        left.remove(index)
        here = stop.point
    return sequence


class _Solver:
    """The child process that solves routes (`delivery.route_solver`), one request at a
    time: pyvroom holds the GIL while it solves. Each request has a number, which its
    answer repeats: the late answer of a request given up is read and dropped by the next
    one, rather than the child stopped and started again (seconds of imports on a busy
    machine)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "delivery.route_solver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=settings.BASE_DIR,
            text=True,
        )
        try:
            if self._line(SOLVER_START_SECONDS) != route_solver.READY:
                raise ChildProcessError("the route solver did not start")
        except Exception:
            self.stop()
            raise

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.process.stdout], [], [], max(timeout, 0))
        if not ready:
            raise TimeoutError("the route solver did not answer in time")
        line = self.process.stdout.readline()
        if not line:
            raise ChildProcessError("the route solver ended")
        return line.strip()

    def solve(self, request: dict, *, timeout: float) -> dict:
        number = next(_request_numbers)
        deadline = time.monotonic() + timeout
        self.process.stdin.write(json.dumps({**request, "id": number}) + "\n")
        self.process.stdin.flush()
        while True:
            answer = json.loads(self._line(deadline - time.monotonic()))
            if answer.get("id") == number:
                break
        if "error" in answer:
            raise RuntimeError(f"the route solver failed: {answer['error']}")
        return answer

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


# The server process's solver, started by its first route; started again by the next
# route when it has ended or broken its protocol.
_solver: _Solver | None = None
_request_numbers = itertools.count(1)
_solver_lock = threading.Lock()
# How long the child may take to start (it imports numpy and vroom), outside any budget.
SOLVER_START_SECONDS = 30.0
# What a solve may take beyond its budget before its plan is given up for the greedy one:
# VROOM stops its search at the budget, then answers.
SOLVER_GRACE_SECONDS = 0.25


def _solver_started() -> _Solver:
    global _solver
    if _solver is None or _solver.process.poll() is not None:
        _solver = _Solver()
    return _solver


def _solve(request: dict, *, seconds: float) -> dict:
    """The child's answer to `request` within `seconds` and the grace, else an error."""
    global _solver
    if not _solver_lock.acquire(timeout=seconds):
        raise TimeoutError("another route is being solved")
    try:
        solver = _solver_started()
        try:
            return solver.solve(request, timeout=seconds + SOLVER_GRACE_SECONDS)
        except TimeoutError:
            raise
        except (OSError, ValueError):
            # Ended, or answering what is not its protocol: the next route starts another.
            solver.stop()
            _solver = None
            raise
    finally:
        _solver_lock.release()


def _vroom_sequence(
    problem: RouteProblem, *, relaxed: frozenset[int], seconds: float
) -> tuple[list[int] | None, frozenset[int]]:
    """VROOM's order of the stops, each drop-off in its slot (only from its start for the
    orders of `relaxed`, and for a slot already over, as no plan keeps it), and no order
    left out; else None and the orders it left out. Raises `TimeoutError` when the child
    takes longer than `seconds` and the grace."""

    def window(stop: RouteStop) -> tuple[int, int] | None:
        if stop.opens_s is None:
            return None
        if stop.order_id not in relaxed and stop.closes_s >= stop.opens_s:
            return stop.opens_s, stop.closes_s
        return stop.opens_s, _NO_END

    dropoffs = {
        stop.order_id: index
        for index, stop in enumerate(problem.stops)
        if stop.kind == StopKind.DROPOFF
    }
    shipments, jobs = [], []
    for index, stop in enumerate(problem.stops):
        if stop.kind == StopKind.PICKUP:
            dropoff = problem.stops[dropoffs[stop.order_id]]
            shipments.append(
                (index, stop.point, dropoffs[stop.order_id], dropoff.point, window(dropoff))
            )
        elif stop.order_id in problem.on_board:
            jobs.append((index, stop.point, window(stop)))
    request = {
        "durations": problem.table.durations_s,
        "start": problem.start,
        "capacity": problem.capacity,
        "shipments": shipments,
        "jobs": jobs,
        "seconds": seconds,
    }
    answer = _solve(request, seconds=seconds)
    if answer["order"] is not None:
        return answer["order"], frozenset()
    return None, frozenset(problem.stops[index].order_id for index in answer["left_out"])


def route_sequence(problem: RouteProblem, *, seconds: float) -> tuple[list[int], str]:
    """The order of the stops and who found it (`RouteSolver`): VROOM within `seconds`,
    keeping every slot it can (a slot it cannot keep with the others kept from its start
    only, so that one stop's lateness costs no other its slot); else the greedy plan."""
    if not problem.stops:
        return [], RouteSolver.NONE
    slotted = {stop.order_id for stop in problem.stops if stop.opens_s is not None}
    try:
        if seconds > 0:
            with _solver_lock:
                # The child's start (once per server process) is no part of the budget.
                _solver_started()
        deadline = time.monotonic() + seconds
        relaxed: frozenset[int] = frozenset()
        while (remaining := deadline - time.monotonic()) > 0:
            sequence, left_out = _vroom_sequence(problem, relaxed=relaxed, seconds=remaining)
            if sequence is None:
                # Each round keeps fewer slots' ends, so the rounds end.
                if not (left_out & slotted) - relaxed:
                    break
                relaxed |= left_out & slotted
                continue
            if route_valid(problem, sequence):
                return sequence, RouteSolver.VROOM
            logger.error("VROOM answered a route breaking a rule: %s", sequence)
            break
    except Exception:  # the solver's failure of any kind is answered by the greedy plan
        logger.exception("VROOM failed; the route is the greedy plan")
    return route_greedy(problem), RouteSolver.GREEDY


def _table_check(table: TravelTable, *, size: int) -> None:
    """Refuse (ValueError) a provider's table that no plan can be timed on, which then
    counts as the provider's failure: one not `size` by `size`, a value that is not a
    finite number of zero or more (a negative leg would arrive before it left, a NaN
    distance is no JSON), or a leg so long that a plan through every point could end
    past `_NO_END` (the end of every open window; far enough, and an arrival is past
    the last date a timestamp can show)."""
    longest = _NO_END // size
    for rows, most in ((table.durations_s, longest), (table.distances_m, math.inf)):
        if len(rows) != size or any(len(row) != size for row in rows):
            raise ValueError("a travel table of the wrong size")
        for value in itertools.chain.from_iterable(rows):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and 0 <= value <= most):
                raise ValueError(f"a travel table holding {value!r}")


def travel_table(
    points: list[tuple[float, float]], *, vehicle: str
) -> tuple[TravelTable, str, bool]:
    """The configured provider's table between `points`, its name, and whether it failed
    (then the table is the geodesic one)."""
    provider = configured_provider()
    geodesic = GeodesicProvider()
    if isinstance(provider, GeodesicProvider) or not points:
        return geodesic.table(points, vehicle=vehicle), provider.name, False
    try:
        table = provider.table(points, vehicle=vehicle)
        _table_check(table, size=len(points))
        return table, provider.name, False
    except Exception:  # a provider's failure of any kind is answered by the geodesic table
        logger.warning("%s failed to answer a travel table", provider.name, exc_info=True)
        return geodesic.table(points, vehicle=vehicle), geodesic.name, True


def _seconds_from(now: datetime, moment: datetime | None, rounding) -> int | None:
    return None if moment is None else int(rounding((moment - now).total_seconds()))


def courier_route(*, courier_id: int, now: datetime | None = None) -> dict:
    """The route answer (`ROUTE`) for the courier's active orders, planned from `now`."""
    now = now or timezone.now()
    x, y = coordinates("location")
    start = (
        Courier.objects.filter(pk=courier_id)
        .annotate(x=x, y=y)
        .values_list("x", "y", "vehicle", "capacity")
        .get()
    )
    pickup_x, pickup_y = coordinates("merchant__location")
    dropoff_x, dropoff_y = coordinates("delivery_address__location")
    orders = list(
        Order.objects.filter(courier_id=courier_id, status__in=ACTIVE_DELIVERY_STATUSES)
        .annotate(
            on_board=Case(
                When(status=OrderStatus.PICKED_UP, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            pickup_x=pickup_x,
            pickup_y=pickup_y,
            dropoff_x=dropoff_x,
            dropoff_y=dropoff_y,
        )
        .order_by("on_board", "created_at", "id")
        .values_list(
            "id",
            "on_board",
            "pickup_x",
            "pickup_y",
            "dropoff_x",
            "dropoff_y",
            "slot_starts_at",
            "slot_ends_at",
        )
    )
    planned, unplanned = orders[: settings.ROUTE_MAX_ORDERS], orders[settings.ROUTE_MAX_ORDERS :]
    points = [] if start[0] is None else [(start[0], start[1])]
    stops = []
    for order_id, waiting, px, py, dx, dy, slot_start, slot_end in planned:
        if waiting:
            points.append((px, py))
            stops.append(RouteStop(order_id=order_id, kind=StopKind.PICKUP, point=len(points) - 1))
        points.append((dx, dy))
        stops.append(
            RouteStop(
                order_id=order_id,
                kind=StopKind.DROPOFF,
                point=len(points) - 1,
                opens_s=None
                if slot_start is None
                else max(0, _seconds_from(now, slot_start, math.ceil)),
                closes_s=_seconds_from(now, slot_end, math.floor),
            )
        )
    on_board = sum(1 for row in planned if not row[1])
    table, provider, degraded = (
        travel_table(points, vehicle=start[2])
        if stops
        else (TravelTable([], []), configured_provider().name, False)
    )
    problem = RouteProblem(
        stops=tuple(stops),
        table=table,
        start=None if start[0] is None else 0,
        capacity=max(start[3], on_board),
    )
    sequence, solver = route_sequence(problem, seconds=settings.ROUTE_SOLVE_SECONDS)
    timed = route_timing(problem, sequence)
    return ROUTE.render(
        (
            [
                (
                    item.stop.order_id,
                    item.stop.kind,
                    point_of(*points[item.stop.point]),
                    now + timedelta(seconds=item.at_s),
                    round(item.distance_m, 2),
                    item.late,
                )
                for item in timed
            ],
            sum(round(item.distance_m, 2) for item in timed),
            timed[-1].at_s if timed else 0,
            solver,
            provider,
            degraded,
            [row[0] for row in unplanned],
        )
    )
