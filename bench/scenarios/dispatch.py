"""Delivery and dispatch scenarios.

1. Priority assignment: `POST /api/v1/orders/priority-assignment/` as an operator, for
   `ORDERS` waiting orders and `COURIERS` available couriers with `CAPACITY` free slots
   each (so slots outnumber orders and every order with a courier in reach can be
   assigned). The call is repeated `ASSIGNMENT_CALLS` times from the same state. Its
   total pickup distance is compared, in the same run, with the optimum of the full dense
   problem (every order against every courier slot, exact spheroid `ST_Distance` from
   PostGIS for all pairs, pairs beyond the reach forbidden) solved with SciPy's
   `linear_sum_assignment`, and with greedy nearest-first (oldest order first takes its
   nearest free slot in reach) as a reference. Every call must answer the optimum's total
   (the worst call's ratio is reported) and the same total as the others. Other couriers
   of the city that are available and fresh in reach take part; on a city seeded minutes
   before, their locations turn stale during the run (the seed dates them up to 150 s
   back and `COURIER_LOCATION_TTL` is 300 s), which changed the problem under the calls:
   each call found fewer couriers than the reference and the one before. They are held
   fresh for the calls, as the bench couriers are, and get their times back afterwards.
2. ETA: `POST /api/v1/delivery/eta/` for 20 merchants, with the bench server's ETA
   provider set to `bench.scenarios.fake_providers.Provider100ms` (every estimate takes 100 ms).
   If the server given has another provider, the scenario starts a server of its own
   with `SERVER_ENV` for this part.
3. Location pings: `POST /api/v1/couriers/me/location/` from 16 clients, each a courier
   of its own with its own token, each ping with heading, speed and accuracy and kept in
   the courier's track, against the bare UPDATE of the courier's location sent through
   psycopg (the issue's reference: the rate of a ping before tracks were kept), the two
   in `PING_ROUNDS` slices each, in turns.
4. Live streams: `BENCH_STREAMS` (1,000) `GET /api/v1/orders/{id}/stream/` held open on a
   server of one process (of its own, without the relay: nothing is written), as the
   operator: the process's memory per stream (RSS growth / streams) and the p50 of the
   order's `tracking/` with the streams open, beside its p50 without them.

Bench accounts (`bench-operator`, `bench-dispatch-buyer`, `bench-courier-NNN`, with API
tokens) are created once and reused. The orders are created by SQL for each run (status
`confirmed`, no courier, bought by `bench-dispatch-buyer`) and deleted afterwards; bench
couriers are left `offline`, so they never count as candidates outside this scenario.

Alone, against `BENCH_DATABASE_URL` (created and seeded when missing):

    BENCH_DATABASE_URL=postgis://.../geomarket_bench2 .venv/bin/python -m bench.scenarios.dispatch
"""

import asyncio
import json
import math
import os
import random
import threading
import time
from contextlib import nullcontext
from itertools import cycle

import httpx
import numpy as np
import psycopg
from scipy.optimize import linear_sum_assignment

from bench.common import accounts as account_rows
from bench.common.harness import run_alone
from bench.common.http1 import Connection, ProtocolError
from bench.common.load import (
    Measurement,
    Request,
    http_scenario,
    interleaved,
    sql_scenario,
    summarize,
)
from bench.common.processes import production_env, production_server, uvicorn_server, workers
from bench.common.report import ErrorSamples
from bench.scenarios.fake_providers import Provider100ms

# The bench server needs this to answer ETAs with the 100 ms fake provider.
ETA_PROVIDER = f"{Provider100ms.__module__}.{Provider100ms.__qualname__}"
SERVER_ENV = {"ETA_PROVIDER": ETA_PROVIDER}

ORDERS = 500
COURIERS = 300
CAPACITY = 2
REACH_M = 10_000.0  # DISPATCH_MAX_DISTANCE_M's default, sent explicitly with each call
COURIER_SPREAD_M = 2_000.0  # couriers wait within this distance of an order's merchant
ASSIGNMENT_CALLS = 5
ASSIGNMENT_TARGET = "<= 1.01"
ETA_MERCHANTS = 20
ETA_REQUESTS = 50  # distinct request bodies, cycled
ETA_TARGET = "<= 1.3"
PING_CLIENTS = 16
PING_RATE_TARGET = ">= 0.3"  # of the raw UPDATE's rate, at 16 clients
PING_P95_TARGET_MS = 50.0
DURATION = 8.0
COURIER_TTL_S = int(os.environ.get("COURIER_LOCATION_TTL", "300"))

OPERATOR = "bench-operator"
BUYER = "bench-dispatch-buyer"
COURIER_PREFIX = "bench-courier-"
ACTIVE = ["confirmed", "preparing", "ready", "picked_up"]
UNREACHABLE = 1e12
ASSIGN_PATH = "/api/v1/orders/priority-assignment/"
ETA_PATH = "/api/v1/delivery/eta/"
PING_PATH = "/api/v1/couriers/me/location/"
# The pings and their raw SQL baseline are measured in this many slices each, in turns.
PING_ROUNDS = 4
EARTH_M_PER_DEG = 111_320.0


# --- accounts --------------------------------------------------------------------------


def bench_accounts(connection) -> dict:
    """The operator, the buyer of the bench orders and the bench couriers, once."""
    operator_id = account_rows.staff_user(connection, OPERATOR)
    buyer_id = account_rows.users(connection, [BUYER])[BUYER]
    names = account_rows.numbered(COURIER_PREFIX, COURIERS)
    users = account_rows.users(connection, names)
    connection.execute(
        "INSERT INTO delivery_courier (name, vehicle, status, location, location_updated_at,"
        " capacity, created_at, user_id)"
        " SELECT 'Bench courier ' || right(username, 3), 'bike', 'offline', NULL, NULL, %s,"
        " now(), id FROM accounts_user WHERE username = ANY(%s)"
        " ON CONFLICT (user_id) DO NOTHING",
        [CAPACITY, names],
    )
    couriers = connection.execute(
        "SELECT c.id, c.user_id FROM delivery_courier c JOIN accounts_user u ON u.id = c.user_id"
        " WHERE u.username = ANY(%s) ORDER BY u.username",
        [names],
    ).fetchall()
    ping_users = [user_id for _, user_id in couriers[:PING_CLIENTS]]
    tokens = account_rows.tokens(connection, [operator_id, *ping_users])
    # A few hundred new rows are below autovacuum's threshold; without statistics the
    # planner may take these tables for empty (see bench/scenarios/orders.py).
    connection.execute("ANALYZE authtoken_token, accounts_user, delivery_courier")
    return {
        "operator_token": tokens[operator_id],
        "buyer_id": buyer_id,
        "courier_ids": [courier_id for courier_id, _ in couriers],
        "courier_users": [user_id for _, user_id in couriers],
        "ping_clients": [(user_id, tokens[user_id]) for user_id in ping_users],
        "usernames": len(users),
    }


# --- the assignment problem ------------------------------------------------------------

ORDERS_SQL = """
WITH m AS (
    SELECT id FROM merchants_merchant WHERE is_active ORDER BY random() LIMIT %(pool)s
), src AS (
    SELECT m.id AS merchant_id, o.delivery_address_id, o.subtotal, o.delivery_fee, o.total
    FROM m CROSS JOIN LATERAL (
        SELECT delivery_address_id, subtotal, delivery_fee, total FROM orders_order o
        WHERE o.merchant_id = m.id ORDER BY o.created_at DESC LIMIT 1
    ) o
    LIMIT %(n)s
)
INSERT INTO orders_order (status, subtotal, delivery_fee, total, rejection_reason, shortages,
                          created_at, updated_at, delivered_at, buyer_id, delivery_address_id,
                          merchant_id, courier_id)
SELECT 'confirmed', subtotal, delivery_fee, total, '', '[]'::jsonb,
       now() - random() * interval '40 minutes', now(), NULL, %(buyer)s, delivery_address_id,
       merchant_id, NULL
FROM src
RETURNING id
"""

# The couriers the API will lock: its own candidate query, without the locks.
CANDIDATES_SQL = """
SELECT c.id, c.capacity - (
    SELECT count(*) FROM orders_order o
    WHERE o.courier_id = c.id AND o.status = ANY(%(active)s)) AS free, c.status,
    c.location_updated_at
FROM delivery_courier c
WHERE c.status = 'available' AND c.location_updated_at >= now() - make_interval(secs => %(ttl)s)
  AND EXISTS (
    SELECT 1 FROM orders_order o JOIN merchants_merchant m ON m.id = o.merchant_id
    WHERE o.id = ANY(%(orders)s) AND ST_DWithin(c.location, m.location, %(reach)s))
ORDER BY c.id
"""

# Every order against every courier: exact spheroid distances, no index, no reach.
DENSE_SQL = """
SELECT o.id, c.id, ST_Distance(m.location, c.location)
FROM orders_order o
JOIN merchants_merchant m ON m.id = o.merchant_id
CROSS JOIN delivery_courier c
WHERE o.id = ANY(%(orders)s) AND c.id = ANY(%(couriers)s)
"""


def remove_bench_orders(connection, buyer_id: int) -> int:
    return connection.execute("DELETE FROM orders_order WHERE buyer_id = %s", [buyer_id]).rowcount


def create_orders(connection, *, buyer_id: int, rng: random.Random) -> list[tuple]:
    """`ORDERS` waiting orders at as many random merchants of the city, oldest first."""
    connection.execute("SELECT setseed(%s)", [rng.uniform(-1, 1)])
    ids = [
        row[0]
        for row in connection.execute(
            ORDERS_SQL, {"pool": ORDERS * 2, "n": ORDERS, "buyer": buyer_id}
        )
    ]
    return connection.execute(
        "SELECT o.id, o.created_at, ST_Y(m.location::geometry), ST_X(m.location::geometry)"
        " FROM orders_order o JOIN merchants_merchant m ON m.id = o.merchant_id"
        " WHERE o.id = ANY(%s) ORDER BY o.created_at, o.id",
        [ids],
    ).fetchall()


def place_couriers(connection, courier_ids: list[int], orders: list[tuple], rng) -> None:
    """Each courier waits within `COURIER_SPREAD_M` of a random order's merchant."""
    lats, lngs = [], []
    for _ in courier_ids:
        _, _, lat, lng = rng.choice(orders)
        distance = COURIER_SPREAD_M * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        lats.append(lat + distance * math.cos(bearing) / EARTH_M_PER_DEG)
        lngs.append(
            lng + distance * math.sin(bearing) / (EARTH_M_PER_DEG * math.cos(math.radians(lat)))
        )
    connection.execute(
        "UPDATE delivery_courier c SET location = ST_SetSRID(ST_MakePoint(p.lng, p.lat), 4326)"
        "::geography, vehicle = 'bike'"
        " FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS p(id, lat, lng)"
        " WHERE c.id = p.id",
        [courier_ids, lats, lngs],
    )


def reset_assignment(connection, *, order_ids, courier_ids, foreign: dict[int, str]) -> None:
    """The state before a call: no order has a courier, every bench courier is available
    with a fresh location and `CAPACITY` slots, the other couriers of the problem have
    their status back and a fresh location (`restore_seen` gives them their times back)."""
    with connection.transaction():
        connection.execute(
            "UPDATE orders_order SET courier_id = NULL"
            " WHERE id = ANY(%s) AND courier_id IS NOT NULL",
            [order_ids],
        )
        connection.execute(
            "UPDATE delivery_courier SET status = 'available', location_updated_at = now(),"
            " capacity = %s WHERE id = ANY(%s)",
            [CAPACITY, courier_ids],
        )
        connection.execute(
            "UPDATE delivery_courier c SET status = f.status, location_updated_at = now()"
            " FROM unnest(%s::bigint[], %s::text[]) AS f(id, status) WHERE c.id = f.id",
            [list(foreign), list(foreign.values())],
        )


def restore_seen(connection, seen: dict) -> None:
    """The other couriers' location times as they were before the calls."""
    connection.execute(
        "UPDATE delivery_courier c SET location_updated_at = f.seen"
        " FROM unnest(%s::bigint[], %s::timestamptz[]) AS f(id, seen) WHERE c.id = f.id",
        [list(seen), list(seen.values())],
    )


def dense_problem(connection, *, orders: list[tuple], slots: dict[int, int]):
    """Distances of every order (rows, oldest first) to every candidate courier."""
    order_ids = [row[0] for row in orders]
    couriers = sorted(slots)
    row_of = {order_id: i for i, order_id in enumerate(order_ids)}
    column_of = {courier_id: j for j, courier_id in enumerate(couriers)}
    distances = np.full((len(order_ids), len(couriers)), np.inf)
    started = time.perf_counter()
    for order_id, courier_id, distance in connection.execute(
        DENSE_SQL, {"orders": order_ids, "couriers": couriers}
    ):
        distances[row_of[order_id], column_of[courier_id]] = distance
    return order_ids, couriers, distances, time.perf_counter() - started


def optimum(distances: np.ndarray, couriers: list[int], slots: dict[int, int]) -> dict:
    """Min-cost assignment over the full dense orders-by-slots matrix."""
    started = time.perf_counter()
    free = [slots[courier_id] for courier_id in couriers]
    slot_courier = np.repeat(np.arange(len(couriers)), free)
    cost = distances[:, slot_courier]
    cost = np.where(cost <= REACH_M, cost, UNREACHABLE)
    rows, columns = linear_sum_assignment(cost)
    chosen = cost[rows, columns] < UNREACHABLE
    return {
        "assigned": int(chosen.sum()),
        "total_m": float(cost[rows[chosen], columns[chosen]].sum()),
        "pairs": {
            int(r): int(couriers[slot_courier[c]])
            for r, c in zip(rows[chosen], columns[chosen], strict=True)
        },
        "matrix": list(cost.shape),
        "seconds": time.perf_counter() - started,
    }


def greedy(distances: np.ndarray, couriers: list[int], slots: dict[int, int]) -> dict:
    """Oldest order first (rows are oldest first) takes its nearest free slot in reach."""
    left = np.array([slots[courier_id] for courier_id in couriers])
    total = 0.0
    assigned = 0
    for row in distances:
        candidates = np.where((left > 0) & (row <= REACH_M), row, np.inf)
        column = int(np.argmin(candidates))
        if np.isfinite(candidates[column]):
            left[column] -= 1
            total += float(candidates[column])
            assigned += 1
    return {"assigned": assigned, "total_m": total}


def measure_assignment(connection, *, base_url, accounts, rng, log, failures) -> dict:
    courier_ids = accounts["courier_ids"]
    orders = create_orders(connection, buyer_id=accounts["buyer_id"], rng=rng)
    order_ids = [row[0] for row in orders]
    if len(order_ids) < ORDERS:
        failures.append(f"only {len(order_ids)} bench orders could be created")
    place_couriers(connection, courier_ids, orders, rng)
    reset_assignment(connection, order_ids=order_ids, courier_ids=courier_ids, foreign={})
    params = {"active": ACTIVE, "ttl": COURIER_TTL_S, "orders": order_ids, "reach": REACH_M}
    candidates = connection.execute(CANDIDATES_SQL, params).fetchall()
    bench = set(courier_ids)
    foreign = {cid: status for cid, _, status, _ in candidates if cid not in bench}
    seen = {cid: seen_at for cid, _, _, seen_at in candidates if cid not in bench}
    slots = {cid: free for cid, free, _, _ in candidates if free > 0}
    if foreign:
        log(f"  note: {len(foreign)} other available, fresh couriers in reach take part too")
    order_rows, couriers, distances, dense_s = dense_problem(connection, orders=orders, slots=slots)
    reachable = int((distances <= REACH_M).any(axis=1).sum())
    best = optimum(distances, couriers, slots)
    near = greedy(distances, couriers, slots)
    log(
        f"  {len(order_ids)} orders, {len(slots)} couriers, {sum(slots.values())} slots;"
        f" {reachable} orders with a courier in reach; dense matrix {best['matrix'][0]}"
        f" x {best['matrix'][1]} ({dense_s * 1000:.0f} ms in PostGIS, solved in"
        f" {best['seconds'] * 1000:.0f} ms)"
    )

    body = {"order_ids": order_ids, "max_distance_m": REACH_M}
    headers = {"Authorization": f"Token {accounts['operator_token']}"}
    latencies, totals, errors, answers = [], [], 0, []
    started_all = time.perf_counter()
    try:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            for call in range(ASSIGNMENT_CALLS):
                reset_assignment(
                    connection, order_ids=order_ids, courier_ids=courier_ids, foreign=foreign
                )
                started = time.perf_counter()
                response = client.post(ASSIGN_PATH, json=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    errors += 1
                    failures.append(
                        f"priority-assignment call {call}: {response.status_code}"
                        f" {response.text[:300]}"
                    )
                    continue
                latencies.append(elapsed)
                answer = response.json()
                totals.append(answer["total_distance_m"])
                answers.append(answer)
        seconds = time.perf_counter() - started_all
        reset_assignment(connection, order_ids=order_ids, courier_ids=courier_ids, foreign=foreign)
    finally:
        restore_seen(connection, seen)
    measurement = summarize("orders/priority-assignment", 1, latencies, errors, seconds)
    if not answers:
        return {"measurement": measurement}

    # The answer must be a valid assignment of these orders to these couriers' free slots,
    # at the distances PostGIS gives for the pairs.
    answer = answers[0]
    row_of = {order_id: i for i, order_id in enumerate(order_rows)}
    column_of = {courier_id: j for j, courier_id in enumerate(couriers)}
    per_courier: dict[int, int] = {}
    worst_gap = 0.0
    for a in answer["assignments"]:
        if a["order_id"] not in row_of or a["courier_id"] not in column_of:
            failures.append(f"assignment outside the problem: {a}")
            continue
        per_courier[a["courier_id"]] = per_courier.get(a["courier_id"], 0) + 1
        exact = distances[row_of[a["order_id"]], column_of[a["courier_id"]]]
        worst_gap = max(worst_gap, abs(exact - a["distance_m"]))
        if exact > REACH_M + 0.01:
            failures.append(f"assignment beyond reach: {a} (exact {exact:.2f} m)")
    over = {c: n for c, n in per_courier.items() if n > slots.get(c, 0)}
    if over:
        failures.append(f"couriers given more orders than free slots: {over}")
    if len({a["order_id"] for a in answer["assignments"]}) != len(answer["assignments"]):
        failures.append("an order was assigned twice")
    if len(set(totals)) > 1:
        failures.append(f"the calls over the same orders answered different totals: {totals}")
    # The worst call's total: each must be the optimum's.
    api_total = max(totals)
    api_assigned = len(answer["assignments"])
    if api_assigned != best["assigned"]:
        failures.append(
            f"the API assigned {api_assigned} orders, the optimum {best['assigned']}:"
            " totals not comparable"
        )
    ratio = round(api_total / best["total_m"], 4) if best["total_m"] else float("nan")
    greedy_ratio = round(near["total_m"] / best["total_m"], 4) if best["total_m"] else float("nan")
    log(
        f"  {'orders/priority-assignment':<34} c=1  p50 {measurement.p50_ms:7.1f} ms"
        f"  max {max(latencies) * 1000:7.1f}  ({len(latencies)} calls, errors {errors})"
    )
    log(
        f"  total pickup distance: API {api_total / 1000:.3f} km ({api_assigned} orders),"
        f" optimum {best['total_m'] / 1000:.3f} km ({best['assigned']}),"
        f" greedy {near['total_m'] / 1000:.3f} km ({near['assigned']});"
        f" API/optimum {ratio}, greedy/optimum {greedy_ratio};"
        f" largest distance gap {worst_gap:.3f} m"
    )
    return {
        "measurement": measurement,
        "ratio": ratio,
        "greedy_ratio": greedy_ratio,
        "detail": {
            "orders": len(order_ids),
            "orders_with_courier_in_reach": reachable,
            "couriers": len(slots),
            "bench_couriers": len(bench & set(slots)),
            "other_couriers": len(foreign),
            "slots": sum(slots.values()),
            "reach_m": REACH_M,
            "calls": len(latencies),
            "call_ms": [round(x * 1000, 1) for x in latencies],
            "api_total_m": api_total,
            "api_totals_m": totals,
            "api_assigned": api_assigned,
            "api_unassigned": len(answer["unassigned"]),
            "optimum_total_m": round(best["total_m"], 2),
            "optimum_assigned": best["assigned"],
            "optimum_solve_ms": round(best["seconds"] * 1000, 1),
            "dense_matrix": best["matrix"],
            "dense_distances_ms": round(dense_s * 1000, 1),
            "greedy_total_m": round(near["total_m"], 2),
            "greedy_assigned": near["assigned"],
            "same_pairs_as_optimum": sum(
                1
                for a in answer["assignments"]
                if best["pairs"].get(row_of.get(a["order_id"], -1)) == a["courier_id"]
            ),
            "largest_distance_gap_m": round(worst_gap, 3),
        },
    }


# --- ETA -------------------------------------------------------------------------------

ETA_BODIES_SQL = """
WITH centre AS (
    SELECT id, location FROM merchants_merchant WHERE is_active ORDER BY random() LIMIT %(n)s
)
SELECT ST_Y(c.location::geometry), ST_X(c.location::geometry), near.ids
FROM centre c CROSS JOIN LATERAL (
    SELECT array_agg(m.id) AS ids FROM (
        SELECT id FROM merchants_merchant m WHERE m.is_active
        ORDER BY m.location <-> c.location LIMIT %(k)s
    ) m
) near
"""


def eta_bodies(connection, rng: random.Random) -> list[dict]:
    """Destinations in town, each with its 20 nearest merchants."""
    connection.execute("SELECT setseed(%s)", [rng.uniform(-1, 1)])
    return [
        {
            "destination": {
                "lat": round(lat + rng.uniform(-0.01, 0.01), 6),
                "lng": round(lng + rng.uniform(-0.015, 0.015), 6),
            },
            "merchant_ids": ids,
        }
        for lat, lng, ids in connection.execute(
            ETA_BODIES_SQL, {"n": ETA_REQUESTS, "k": ETA_MERCHANTS}
        )
    ]


def eta_check(base_url: str, bodies: list[dict]) -> dict:
    """Which provider answered, and whether any estimate fell back (degraded)."""
    providers: dict[str, int] = {}
    degraded = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for body in bodies[:5]:
            response = client.post(ETA_PATH, json=body)
            response.raise_for_status()
            for result in response.json()["results"]:
                providers[result["provider"]] = providers.get(result["provider"], 0) + 1
                degraded += bool(result["degraded"])
    return {"providers": providers, "degraded": degraded}


def measure_eta(base_url: str, bodies: list[dict], *, measure, on_error) -> dict:
    requests = [Request(ETA_PATH, method="POST", json=body, expect=200) for body in bodies]
    http_scenario(
        name="warm-up", base_url=base_url, paths=cycle(requests), concurrency=4, duration=2
    )
    results = {}
    for concurrency in (1, 8):
        results[concurrency] = measure(
            http_scenario(
                name=f"delivery/eta ({ETA_MERCHANTS} merchants)",
                base_url=base_url,
                paths=cycle(requests),
                concurrency=concurrency,
                duration=DURATION,
                on_error=on_error,
            )
        )
    return results


# --- location pings --------------------------------------------------------------------

PING_SQL = """
UPDATE delivery_courier
SET location = ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography,
    location_updated_at = now()
WHERE user_id = %s
RETURNING id, location_updated_at
"""


async def _ping_load(base_url, clients, make_point, duration, on_error):
    """One worker per courier, each with its own token and connection: no two clients
    share a row. The lean client (`bench.common.http1`): httpx spent as much CPU per ping
    as the server, on the same two cores."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker(token):
        nonlocal errors
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        connection = Connection(base_url, timeout=30)
        try:
            while time.perf_counter() < deadline:
                lat, lng = make_point()
                body = json.dumps(
                    {"lat": lat, "lng": lng, "heading": 90.0, "speed_mps": 4.2, "accuracy_m": 6.0}
                ).encode()
                started = time.perf_counter()
                try:
                    response = await connection.request(
                        "POST", PING_PATH, body=body, headers=headers
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    errors += 1
                    on_error(f"POST {PING_PATH}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    errors += 1
                    on_error(f"POST {PING_PATH}: {response.status_code} {response.text[:300]}")
                    continue
                latencies.append(elapsed)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(token) for _, token in clients))
    return latencies, errors, time.perf_counter() - started


def measure_pings(*, base_url, dsn, clients, centre, rng, measure, on_error) -> dict:
    lat0, lng0 = centre

    def point():
        return (
            round(lat0 + rng.uniform(-0.08, 0.08), 6),
            round(lng0 + rng.uniform(-0.12, 0.12), 6),
        )

    asyncio.run(_ping_load(base_url, clients[:4], point, 1.0, on_error))  # warm-up
    latencies, errors, seconds = asyncio.run(
        _ping_load(base_url, clients[:1], point, DURATION / 2, on_error)
    )
    single = measure(summarize("couriers/me/location", 1, latencies, errors, seconds))
    local = threading.local()
    users = cycle([user_id for user_id, _ in clients])
    users_lock = threading.Lock()

    def make_call():
        if not hasattr(local, "user_id"):
            with users_lock:
                local.user_id = next(users)
        lat, lng = point()
        return PING_SQL, [lng, lat, local.user_id]

    def api_slice():
        latencies, errors, seconds = asyncio.run(
            _ping_load(base_url, clients, point, DURATION / PING_ROUNDS, on_error)
        )
        return summarize("couriers/me/location", len(clients), latencies, errors, seconds)

    def sql_slice():
        return sql_scenario(
            name="raw SQL location ping",
            dsn=dsn,
            make_call=make_call,
            concurrency=len(clients),
            duration=DURATION / PING_ROUNDS,
            on_error=on_error,
        )

    # In turns, so that a drift in the machine's load falls on both alike.
    both = interleaved(PING_ROUNDS, api=api_slice, sql=sql_slice)
    return {"api": measure(both["api"]), "sql": measure(both["sql"]), "single": single}


# --- live streams ----------------------------------------------------------------------

STREAMS = int(os.environ.get("BENCH_STREAMS", "1000"))


def _server_pid(base_url: str) -> int:
    """The uvicorn process serving `base_url` (one worker: it serves in its own process)."""
    port = base_url.rsplit(":", 1)[1]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                argv = file.read().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in argv and port.encode() in argv:
            return int(entry)
    raise RuntimeError(f"no uvicorn process on port {port}")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class _OpenStreams:
    """`count` streams of one order held open from a thread of their own, each read up to
    its first comment (so the server has subscribed it), until `close()`."""

    def __init__(self, *, base_url: str, path: str, headers: dict, count: int, on_error):
        self.base_url, self.path, self.headers, self.count = base_url, path, headers, count
        self.on_error = on_error
        self.opened = 0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._hold(),))
        self.thread.start()
        self.ready.wait()

    async def _hold(self):
        self.stop = asyncio.Event()
        limits = httpx.Limits(max_connections=self.count, max_keepalive_connections=0)
        timeout = httpx.Timeout(60.0)
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=timeout
        ) as client:
            opening = asyncio.Semaphore(50)

            async def one():
                try:
                    async with opening:
                        stream = client.stream("GET", self.path, headers=self.headers)
                        response = await stream.__aenter__()
                        if response.status_code != 200:
                            self.on_error(f"stream: {response.status_code}")
                            await stream.__aexit__(None, None, None)
                            return
                        await anext(response.aiter_raw())
                        self.opened += 1
                    await self.stop.wait()
                    await stream.__aexit__(None, None, None)
                except httpx.HTTPError as exc:
                    self.on_error(f"stream: {exc!r}")

            tasks = [asyncio.ensure_future(one()) for _ in range(self.count)]
            while self.opened < self.count and not all(task.done() for task in tasks):
                await asyncio.sleep(0.05)
            self.ready.set()
            await asyncio.gather(*tasks)

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join()
        self.loop.close()


def measure_streams(*, dsn: str, order_id: int, token: str, count: int, measure, on_error) -> dict:
    """`count` streams of one order open on one server process: its memory per stream
    (the growth of its RSS over the streams, each subscribed and read to its first line)
    and the p50 of the order's tracking beside them, against the same without them."""
    headers = {"Authorization": f"Token {token}"}
    stream_path = f"/api/v1/orders/{order_id}/stream/"
    tracking = Request(f"/api/v1/orders/{order_id}/tracking/", headers=headers, expect=200)
    env = production_env(database_url=dsn)
    with uvicorn_server(
        app="geomarket.asgi:application", workers=1, env=env, ready_path="/healthz"
    ) as base_url:
        pid = _server_pid(base_url)
        # Warm: the first stream opens the process's Redis connections.
        _OpenStreams(
            base_url=base_url, path=stream_path, headers=headers, count=10, on_error=on_error
        ).close()
        http_scenario(
            name="warm-up", base_url=base_url, paths=cycle([tracking]), concurrency=1, duration=1
        )

        def tracking_load(name: str) -> Measurement:
            return measure(
                http_scenario(
                    name=name,
                    base_url=base_url,
                    paths=cycle([tracking]),
                    concurrency=1,
                    duration=DURATION / 2,
                    on_error=on_error,
                )
            )

        before = tracking_load("orders/tracking, no streams")
        rss_before = _rss_kib(pid)
        started = time.perf_counter()
        streams = _OpenStreams(
            base_url=base_url, path=stream_path, headers=headers, count=count, on_error=on_error
        )
        opening_s = time.perf_counter() - started
        try:
            rss_open = _rss_kib(pid)
            beside = tracking_load(f"orders/tracking, {count} streams")
        finally:
            streams.close()
    return {
        "streams": count,
        "opened": streams.opened,
        "opening_s": round(opening_s, 2),
        "rss_kib_before": rss_before,
        "rss_kib_open": rss_open,
        "kib_per_stream": round((rss_open - rss_before) / max(streams.opened, 1), 2),
        "tracking_p50_ms_without": before.p50_ms,
        "tracking_p50_ms_with": beside.p50_ms,
    }


# --- the scenario ----------------------------------------------------------------------


def run(*, base_url: str, dsn: str, rng: random.Random, log) -> dict:
    """`base_url`: the bench server, ideally started with `SERVER_ENV`; without it the
    ETA part runs against a server of its own (same settings plus `SERVER_ENV`)."""
    measurements: list[Measurement] = []
    failures: list[str] = []
    errors = ErrorSamples()
    on_error = errors.on_error

    def measure(measurement: Measurement) -> Measurement:
        log(
            f"  {measurement.name:<34} c={measurement.concurrency:<2} p50 {measurement.p50_ms:7.2f}"
            f" ms  p95 {measurement.p95_ms:7.2f}  p99 {measurement.p99_ms:7.2f}"
            f"  {measurement.rps:8.1f} req/s  errors {measurement.errors}"
        )
        measurements.append(measurement)
        if measurement.errors:
            failures.append(f"{measurement.name} c={measurement.concurrency}: errors")
        return measurement

    load_start = list(os.getloadavg())
    connection = psycopg.connect(dsn, autocommit=True)
    accounts = bench_accounts(connection)
    leftovers = remove_bench_orders(connection, accounts["buyer_id"])
    if leftovers:
        log(f"  removed {leftovers} bench orders left by an interrupted run")
    report: dict = {}
    try:
        # 1. Priority assignment.
        assignment = measure_assignment(
            connection, base_url=base_url, accounts=accounts, rng=rng, log=log, failures=failures
        )
        measurements.append(assignment["measurement"])
        remove_bench_orders(connection, accounts["buyer_id"])
        connection.execute(
            "UPDATE delivery_courier SET status = 'offline' WHERE id = ANY(%s)",
            [accounts["courier_ids"]],
        )
        report["assignment"] = assignment.get("detail")

        # 2. ETA with the 100 ms provider, on this server or on one of our own.
        bodies = eta_bodies(connection, rng)
        check = eta_check(base_url, bodies)
        own_server = Provider100ms.name not in check["providers"]
        if own_server:
            log(
                f"  the server's ETA provider is {sorted(check['providers'])}: starting one"
                f" with ETA_PROVIDER={ETA_PROVIDER}"
            )
        server = (
            production_server(database_url=dsn, workers=workers(), extra_env=SERVER_ENV)
            if own_server
            else nullcontext(base_url)
        )
        with server as eta_base:
            check = eta_check(eta_base, bodies)
            if set(check["providers"]) != {Provider100ms.name} or check["degraded"]:
                failures.append(f"ETA answers not all from {Provider100ms.name}: {check}")
            eta = measure_eta(eta_base, bodies, measure=measure, on_error=on_error)
            check_after = eta_check(eta_base, bodies)
        report["eta"] = {
            "provider": ETA_PROVIDER,
            "provider_delay_ms": Provider100ms.delay * 1000,
            "merchants_per_request": ETA_MERCHANTS,
            "own_server": own_server,
            "check_before": check,
            "check_after": check_after,
        }

        # 3. Location pings, 16 couriers at once (all offline: they stay out of dispatch).
        centre = connection.execute(
            "SELECT ST_Y(ST_Centroid(ST_Collect(location::geometry))),"
            " ST_X(ST_Centroid(ST_Collect(location::geometry))) FROM merchants_merchant"
        ).fetchone()
        pings = measure_pings(
            base_url=base_url,
            dsn=dsn,
            clients=accounts["ping_clients"],
            centre=centre,
            rng=rng,
            measure=measure,
            on_error=on_error,
        )

        # 4. Live streams of an order of the city, as the operator.
        order_id = connection.execute(
            "SELECT id FROM orders_order WHERE buyer_id <> %s ORDER BY id LIMIT 1",
            [accounts["buyer_id"]],
        ).fetchone()[0]
        streams = measure_streams(
            dsn=dsn,
            order_id=order_id,
            token=accounts["operator_token"],
            count=STREAMS,
            measure=measure,
            on_error=on_error,
        )
        log(
            f"  {streams['opened']} streams: {streams['kib_per_stream']} KiB each; tracking p50"
            f" {streams['tracking_p50_ms_with']:.2f} ms with them,"
            f" {streams['tracking_p50_ms_without']:.2f} ms without"
        )
        if streams["opened"] != STREAMS:
            failures.append(f"streams: {streams['opened']} of {STREAMS} opened")
        report["streams"] = streams
    finally:
        remove_bench_orders(connection, accounts["buyer_id"])
        connection.execute(
            "UPDATE delivery_courier SET status = 'offline' WHERE id = ANY(%s)",
            [accounts["courier_ids"]],
        )
        connection.close()
    for sample in errors.samples:
        log(f"  error sample: {sample}")

    delay_ms = Provider100ms.delay * 1000
    ratios = {
        "assignment_total_vs_optimum": {
            "value": assignment.get("ratio", float("nan")),
            "target": ASSIGNMENT_TARGET,
        },
        "assignment_greedy_vs_optimum": {
            "value": assignment.get("greedy_ratio", float("nan")),
            "target": None,
        },
        "eta_p50_vs_provider_delay_c1": {
            "value": round(eta[1].p50_ms / delay_ms, 3),
            "target": ETA_TARGET,
        },
        "eta_p50_vs_provider_delay_c8": {
            "value": round(eta[8].p50_ms / delay_ms, 3),
            "target": None,
        },
        "pings_rps_vs_sql_c16": {
            "value": round(pings["api"].rps / pings["sql"].rps, 3) if pings["sql"].rps else 0.0,
            "target": PING_RATE_TARGET,
        },
        "streams_tracking_p50_with_vs_without": {
            "value": round(streams["tracking_p50_ms_with"] / streams["tracking_p50_ms_without"], 3),
            "target": None,
        },
        "pings_p95_vs_target_c16": {
            "value": round(pings["api"].p95_ms / PING_P95_TARGET_MS, 3),
            "target": "<= 1",
        },
    }
    report["load_average"] = {"start": load_start, "end": list(os.getloadavg())}
    report["pings"] = {
        "p50_ms_c1": pings["single"].p50_ms,
        "clients": len(accounts["ping_clients"]),
        "rps": pings["api"].rps,
        "p50_ms": pings["api"].p50_ms,
        "p95_ms": pings["api"].p95_ms,
        "p99_ms": pings["api"].p99_ms,
    }
    return {
        "measurements": [m.as_dict() for m in measurements],
        "ratios": ratios,
        **report,
        "failures": failures,
    }


def main() -> int:
    """`python -m bench.scenarios.dispatch`: this scenario alone, against `BENCH_DATABASE_URL`."""
    return run_alone("dispatch", run, extra_env=SERVER_ENV)


if __name__ == "__main__":
    raise SystemExit(main())
