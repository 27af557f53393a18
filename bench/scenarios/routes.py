"""Couriers' routes (`delivery.routes`, behind POST couriers/{id}/route/): the plans'
quality and the solver's time, from this process as a server process plans them (its
solver child included; what HTTP adds is the same as for any POST).

1. Quality: `QUALITY_INSTANCES` random instances of 1 to 4 orders (up to 8 stops), the
   courier's capacity 1 to 3, some orders already picked up. Points in the bench city:
   the courier within 3 km of the merchants' centre, each pickup at a random merchant,
   each drop-off within 3 km of it; travel from the geodesic table (PostGIS spheroid
   distances over a bike's speed, the default provider's `table`). The planner's route
   (`route_sequence` with `ROUTE_SOLVE_SECONDS`) is timed by its own rule (`route_timing`)
   and compared with the exact optimum of the same problem, found here by enumerating
   every sequence that keeps precedence and capacity (at most 8!/2^4 = 2,520). Target:
   the mean of duration ÷ optimum ≤ 1.02. The greedy plan's mean is the reference.
2. Solve time: `SPEED_INSTANCES` random instances of 30 orders (capacity 5, up to 3 on
   board): the time of `route_sequence` alone (target: p95 ≤ 1 s), and of the geodesic
   table before it.

Every plan is checked to keep precedence and capacity; a plan breaking them, or a greedy
fallback in the quality instances, fails the run. Reads the bench city's merchants and
writes nothing.

Alone (no server, nothing migrated or seeded; needs the bench database or any database
with the merchants' table):

    .venv/bin/python -m bench.scenarios.routes
"""

import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

import psycopg

QUALITY_INSTANCES = int(os.environ.get("ROUTE_BENCH_QUALITY_INSTANCES", "200"))
QUALITY_MAX_ORDERS = 4
SPEED_INSTANCES = int(os.environ.get("ROUTE_BENCH_SPEED_INSTANCES", "30"))
SPEED_ORDERS = 30
SPEED_CAPACITY = 5
SPREAD_M = 3_000.0
VEHICLE = "bike"
QUALITY_TARGET = "<= 1.02"
SOLVE_P95_TARGET_MS = 1000.0


def city_points(connection, rng: random.Random, count: int) -> list[tuple[float, float]]:
    """`count` merchants' points (longitude, latitude), drawn at random."""
    rows = connection.execute(
        "SELECT ST_X(location::geometry), ST_Y(location::geometry) FROM merchants_merchant"
        " WHERE is_active ORDER BY id LIMIT 5000"
    ).fetchall()
    return [rows[rng.randrange(len(rows))] for _ in range(count)]


def near(rng: random.Random, point: tuple[float, float]) -> tuple[float, float]:
    from geomarket.geo import geodesic_destination

    lat, lng = geodesic_destination(
        lat=point[1],
        lng=point[0],
        bearing_deg=rng.uniform(0, 360),
        distance_m=SPREAD_M * math.sqrt(rng.random()),
    )
    return lng, lat


def instance(connection, rng: random.Random, *, orders: int, capacity: int, on_board: int):
    """A route problem on the bench city with the geodesic table, and the table's time."""
    from delivery.eta import GEODESIC_TABLE_SQL, geodesic_table
    from delivery.routes import RouteProblem, RouteStop
    from delivery.shapes import StopKind

    shops = city_points(connection, rng, orders)
    centre = (
        statistics.fmean(point[0] for point in shops),
        statistics.fmean(point[1] for point in shops),
    )
    points, stops = [near(rng, centre)], []
    for order_id, shop in enumerate(shops, start=1):
        if order_id > on_board:
            points.append(shop)
            stops.append(RouteStop(order_id=order_id, kind=StopKind.PICKUP, point=len(points) - 1))
        points.append(near(rng, shop))
        stops.append(RouteStop(order_id=order_id, kind=StopKind.DROPOFF, point=len(points) - 1))
    started = time.perf_counter()
    distances = connection.execute(
        GEODESIC_TABLE_SQL.replace("%(lngs)s", "%s").replace("%(lats)s", "%s"),
        [[p[0] for p in points], [p[1] for p in points]],
    ).fetchone()[0]
    table = geodesic_table(distances, size=len(points), vehicle=VEHICLE)
    table_ms = (time.perf_counter() - started) * 1000
    problem = RouteProblem(stops=tuple(stops), table=table, start=0, capacity=capacity)
    return problem, table_ms


def optimum_s(problem) -> int:
    """The shortest duration over every sequence keeping precedence and capacity: a
    depth-first enumeration, cut where a prefix already takes longer than the best."""
    from delivery.shapes import StopKind

    stops = problem.stops
    durations = problem.table.durations_s
    best = math.inf

    def extend(here: int, elapsed: int, left: frozenset, carried: frozenset) -> None:
        nonlocal best
        if elapsed >= best:
            return
        if not left:
            best = elapsed
            return
        for index in left:
            stop = stops[index]
            if stop.kind == StopKind.PICKUP:
                if len(carried) >= problem.capacity:
                    continue
                now_carried = carried | {stop.order_id}
            elif stop.order_id in carried:
                now_carried = carried - {stop.order_id}
            else:
                continue
            extend(
                stop.point,
                elapsed + durations[here][stop.point],
                left - {index},
                now_carried,
            )

    extend(problem.start, 0, frozenset(range(len(stops))), problem.on_board)
    return best


def duration_s(problem, sequence) -> int:
    from delivery.routes import route_timing

    timed = route_timing(problem, sequence)
    return timed[-1].at_s if timed else 0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def run(*, dsn: str, rng: random.Random, log, base_url: str | None = None) -> dict:
    """`base_url` is not used: the planner runs in process."""
    from django.conf import settings

    from delivery.routes import route_greedy, route_sequence, route_valid
    from delivery.shapes import RouteSolver

    failures: list[str] = []
    budget = settings.ROUTE_SOLVE_SECONDS
    with psycopg.connect(dsn, autocommit=True) as connection:
        ratios, greedy_ratios, fallbacks = [], [], 0
        for _ in range(QUALITY_INSTANCES):
            orders = rng.randint(1, QUALITY_MAX_ORDERS)
            capacity = rng.randint(1, 3)
            problem, _ = instance(
                connection,
                rng,
                orders=orders,
                capacity=capacity,
                on_board=rng.randint(0, min(orders, capacity)),
            )
            sequence, solver = route_sequence(problem, seconds=budget)
            if not route_valid(problem, sequence):
                failures.append(f"a plan breaking precedence or capacity: {problem}")
            fallbacks += solver != RouteSolver.VROOM
            best = optimum_s(problem)
            if best == 0:
                continue
            ratios.append(duration_s(problem, sequence) / best)
            greedy_ratios.append(duration_s(problem, route_greedy(problem)) / best)
        quality = {
            "instances": len(ratios),
            "mean_ratio": round(statistics.fmean(ratios), 4),
            "max_ratio": round(max(ratios), 4),
            "optimal_share": round(sum(r <= 1 + 1e-9 for r in ratios) / len(ratios), 3),
            "greedy_mean_ratio": round(statistics.fmean(greedy_ratios), 4),
            "fallbacks": fallbacks,
        }
        log(
            f"  quality: {quality['instances']} instances of 1-{QUALITY_MAX_ORDERS} orders:"
            f" mean duration / optimum {quality['mean_ratio']} (max {quality['max_ratio']},"
            f" optimal in {quality['optimal_share']:.0%}); greedy {quality['greedy_mean_ratio']};"
            f" fallbacks {fallbacks}"
        )
        if fallbacks:
            failures.append(f"{fallbacks} quality instances fell back to the greedy plan")

        solve_ms, table_ms, solvers = [], [], []
        for _ in range(SPEED_INSTANCES):
            problem, table_time = instance(
                connection,
                rng,
                orders=SPEED_ORDERS,
                capacity=SPEED_CAPACITY,
                on_board=rng.randint(0, 3),
            )
            started = time.perf_counter()
            sequence, solver = route_sequence(problem, seconds=budget)
            solve_ms.append((time.perf_counter() - started) * 1000)
            table_ms.append(table_time)
            solvers.append(str(solver))
            if not route_valid(problem, sequence):
                failures.append(f"a {SPEED_ORDERS}-order plan breaking precedence or capacity")
        speed = {
            "instances": SPEED_INSTANCES,
            "orders": SPEED_ORDERS,
            "solve_p50_ms": round(percentile(solve_ms, 0.5), 1),
            "solve_p95_ms": round(percentile(solve_ms, 0.95), 1),
            "solve_max_ms": round(max(solve_ms), 1),
            "table_p50_ms": round(percentile(table_ms, 0.5), 1),
            "table_p95_ms": round(percentile(table_ms, 0.95), 1),
            "greedy_fallbacks": solvers.count(RouteSolver.GREEDY),
            "budget_s": budget,
        }
        log(
            f"  solve, {SPEED_ORDERS} orders: p50 {speed['solve_p50_ms']} ms,"
            f" p95 {speed['solve_p95_ms']} ms, max {speed['solve_max_ms']} ms"
            f" (budget {budget} s; greedy {speed['greedy_fallbacks']});"
            f" geodesic table p50 {speed['table_p50_ms']} ms, p95 {speed['table_p95_ms']} ms"
        )
    return {
        "ratios": {
            "route_duration_vs_optimum_mean": {
                "value": quality["mean_ratio"],
                "target": QUALITY_TARGET,
            },
            "route_greedy_vs_optimum_mean": {
                "value": quality["greedy_mean_ratio"],
                "target": None,
            },
            "route_solve_p95_vs_1s_30_orders": {
                "value": round(speed["solve_p95_ms"] / SOLVE_P95_TARGET_MS, 3),
                "target": "<= 1",
            },
        },
        "quality": quality,
        "speed": speed,
        "failures": failures,
    }


def main() -> int:
    """`python -m bench.scenarios.routes`: this scenario alone, on the bench database as it
    is (read only: not migrated, not seeded, no server)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    import django

    django.setup()
    from bench.common.db import bench_database_url, psycopg_dsn
    from bench.common.report import log, log_ratios

    rng = random.Random(int(os.environ.get("BENCH_SEED", "42")))
    log("routes:")
    result = run(dsn=psycopg_dsn(bench_database_url()), rng=rng, log=log)
    log("")
    log_ratios(result["ratios"])
    for failure in result["failures"]:
        log(f"FAILED {failure}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
