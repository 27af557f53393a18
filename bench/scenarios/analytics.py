"""Analytics scenarios: the operator reports over the bench city's 90 days of orders.

Each report (`top-products`, `revenue`, `merchants`) is asked for the whole 90 days,
for all merchants and (`top-products`, `revenue`) for one merchant, the busiest one, as
an operator (`bench-operator`, created once with an API token). In the same run the same
report is computed by a hand-written SQL window query sent through psycopg. Requests and
queries alternate one by one at one client, so both sides see the same background load;
each case takes `MIN_SAMPLES` pairs or about `BENCH_ANALYTICS_SECONDS` (8), whichever is
more. Before timing, the API's rows are compared with the SQL's (ids, names, counts, ranks,
failed orders and money, in order); a difference is a failure.

The queries the report selectors send, and the guarded statements the event-loop route
sends (`route:...`), are EXPLAINed on the bench database (in a separate process with the
bench database as Django's, so they are exactly what the server sends), and the report
says which indexes they use, among them the partial indexes `order_delivered_at_idx` and
`order_merchant_delivered_idx`.

Alone, against `BENCH_DATABASE_URL` (created and seeded when missing):

    BENCH_DATABASE_URL=postgis://.../geomarket_bench2 .venv/bin/python -m bench.scenarios.analytics
"""

import json
import os
import random
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

import psycopg

from bench.common import ROOT
from bench.common import accounts as account_rows
from bench.common.harness import run_alone
from bench.common.http1 import BlockingClient
from bench.common.load import Measurement, summarize

REPORT_DAYS = 90
TOP = 5
MIN_SAMPLES = 5
MAX_SAMPLES = 200
BUDGET_S = float(os.environ.get("BENCH_ANALYTICS_SECONDS", "8"))
P50_TARGET = "<= 1.5"
OPERATOR = "bench-operator"
PARTIAL_INDEXES = ("order_delivered_at_idx", "order_merchant_delivered_idx")
CENT = Decimal("0.01")

# Rank the products of each merchant on (merchant, product) groups only; names are
# joined afterwards, to the rows that survive the rank filter.
TOP_PRODUCTS_SQL = """
WITH sold AS (
    SELECT o.merchant_id, i.product_id,
           sum(i.quantity) AS units_sold, sum(i.line_total) AS revenue,
           dense_rank() OVER (PARTITION BY o.merchant_id ORDER BY sum(i.quantity) DESC) AS rank
    FROM orders_order o
    JOIN orders_orderitem i ON i.order_id = o.id
    WHERE o.status = 'delivered' AND o.delivered_at >= %(start)s AND o.delivered_at < %(end)s
      {merchant}
    GROUP BY o.merchant_id, i.product_id
)
SELECT s.merchant_id, m.name, s.product_id, p.title, s.units_sold, s.revenue, s.rank
FROM sold s
JOIN merchants_merchant m ON m.id = s.merchant_id
JOIN catalog_product p ON p.id = s.product_id
WHERE s.rank <= %(top)s
ORDER BY s.merchant_id, s.rank, s.product_id
"""

REVENUE_SQL = """
WITH delivered AS (
    SELECT date_trunc('day', delivered_at AT TIME ZONE 'UTC') AS period,
           count(*) AS orders, sum(total) AS revenue
    FROM orders_order
    WHERE status = 'delivered' AND delivered_at >= %(start)s AND delivered_at < %(end)s
      {merchant}
    GROUP BY 1
)
SELECT p.period::date, COALESCE(d.orders, 0), COALESCE(d.revenue, 0),
       sum(COALESCE(d.revenue, 0)) OVER (ORDER BY p.period),
       round(avg(COALESCE(d.revenue, 0)) OVER (
           ORDER BY p.period ROWS BETWEEN 6 PRECEDING AND CURRENT ROW), 2)
FROM generate_series(%(first)s::timestamp, %(last)s::timestamp, interval '1 day') AS p(period)
LEFT JOIN delivered d ON d.period = p.period
ORDER BY p.period
"""

# Aggregate per merchant first, then join the names and take the window over 20,000 rows.
# A merchant's failed orders are those (failed, or returned since) whose `failed` status
# change falls in the range; a merchant that only failed orders there is a row too, with no
# orders or revenue.
MERCHANTS_SQL = """
WITH per AS (
    SELECT merchant_id, count(*) AS orders, sum(total) AS revenue,
           avg(delivered_at - created_at) AS avg_delivery
    FROM orders_order
    WHERE status = 'delivered' AND delivered_at >= %(start)s AND delivered_at < %(end)s
    GROUP BY merchant_id
), failed AS (
    SELECT o.merchant_id, count(*) AS failed
    FROM orders_order o JOIN orders_orderstatuschange c ON c.order_id = o.id
    WHERE o.status IN ('failed', 'returned') AND c.to_status = 'failed'
      AND c.created_at >= %(start)s AND c.created_at < %(end)s
    GROUP BY o.merchant_id
), merchant_rows AS (
    SELECT merchant_id, coalesce(p.orders, 0) AS orders, coalesce(p.revenue, 0) AS revenue,
           p.avg_delivery, coalesce(f.failed, 0) AS failed
    FROM per p FULL JOIN failed f USING (merchant_id)
)
SELECT r.merchant_id, m.name, r.orders, r.revenue,
       r.revenue / nullif(sum(r.revenue) OVER (), 0) AS revenue_share,
       dense_rank() OVER (ORDER BY r.revenue DESC) AS rank,
       extract(epoch FROM r.avg_delivery) / 60 AS avg_delivery_minutes,
       r.failed
FROM merchant_rows r
JOIN merchants_merchant m ON m.id = r.merchant_id
ORDER BY rank, r.merchant_id
"""

BUSIEST_MERCHANT_SQL = """
SELECT merchant_id, count(*) FROM orders_order
WHERE status = 'delivered' AND delivered_at >= %(start)s AND delivered_at < %(end)s
GROUP BY merchant_id ORDER BY count(*) DESC, merchant_id LIMIT 1
"""


def money(value) -> str:
    return f"{Decimal(value or 0).quantize(CENT, ROUND_HALF_UP)}"


@dataclass(frozen=True)
class Case:
    key: str
    name: str
    path: str
    sql: str
    params: dict

    def api_keys(self, rows: list[dict]) -> list[tuple]:
        report = self.key.split(":")[0]
        if report == "top-products":
            return [
                (
                    r["merchant_id"],
                    r["merchant_name"],
                    r["product_id"],
                    r["title"],
                    r["units_sold"],
                    r["revenue"],
                    r["rank"],
                )
                for r in rows
            ]
        if report == "revenue":
            return [
                (r["period"], r["orders"], r["revenue"], r["running_revenue"], r["moving_avg_7"])
                for r in rows
            ]
        return [
            (r["merchant_id"], r["name"], r["orders"], r["revenue"], r["rank"], r["failed"])
            for r in rows
        ]

    def sql_keys(self, rows: list[tuple]) -> list[tuple]:
        report = self.key.split(":")[0]
        if report == "top-products":
            return [(r[0], r[1], r[2], r[3], r[4], money(r[5]), r[6]) for r in rows]
        if report == "revenue":
            return [(r[0].isoformat(), r[1], money(r[2]), money(r[3]), money(r[4])) for r in rows]
        return [(r[0], r[1], r[2], money(r[3]), r[5], r[7]) for r in rows]


def report_range(today: date | None = None) -> tuple[date, date]:
    """The bench preset's 90 days: inclusive UTC dates up to today."""
    date_to = today or datetime.now(UTC).date()
    return date_to - timedelta(days=REPORT_DAYS - 1), date_to


def _bounds(date_from: date, date_to: date) -> dict:
    return {
        "start": datetime.combine(date_from, datetime.min.time(), tzinfo=UTC),
        "end": datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tzinfo=UTC),
        "first": date_from,
        "last": date_to,
    }


def cases(date_from: date, date_to: date, merchant_id: int) -> list[Case]:
    bounds = _bounds(date_from, date_to)
    query = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
    one = {**query, "merchant_id": merchant_id}
    by_merchant = "AND o.merchant_id = %(merchant_id)s"
    return [
        Case(
            "top-products:all",
            "analytics/top-products (all)",
            "/api/v1/analytics/top-products/?" + urlencode(query),
            TOP_PRODUCTS_SQL.format(merchant=""),
            {**bounds, "top": TOP},
        ),
        Case(
            "top-products:merchant",
            "analytics/top-products (merchant)",
            "/api/v1/analytics/top-products/?" + urlencode(one),
            TOP_PRODUCTS_SQL.format(merchant=by_merchant),
            {**bounds, "top": TOP, "merchant_id": merchant_id},
        ),
        Case(
            "revenue:all",
            "analytics/revenue (all)",
            "/api/v1/analytics/revenue/?" + urlencode(query),
            REVENUE_SQL.format(merchant=""),
            bounds,
        ),
        Case(
            "revenue:merchant",
            "analytics/revenue (merchant)",
            "/api/v1/analytics/revenue/?" + urlencode(one),
            REVENUE_SQL.format(merchant="AND merchant_id = %(merchant_id)s"),
            {**bounds, "merchant_id": merchant_id},
        ),
        Case(
            "merchants:all",
            "analytics/merchants (all)",
            "/api/v1/analytics/merchants/?" + urlencode(query),
            MERCHANTS_SQL,
            bounds,
        ),
    ]


def operator_token(connection) -> str:
    """`bench-operator` (staff, so an operator) with an API token, created once."""
    user_id = account_rows.staff_user(connection, OPERATOR)
    return account_rows.tokens(connection, [user_id])[user_id]


# --- EXPLAIN -----------------------------------------------------------------------------


def plan_summary(plan: list, *, jit_above_cost: float | None = None) -> dict:
    """Which indexes a plan uses and how it reads orders_order."""
    nodes: list[dict] = []

    def walk(node):
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    root = plan[0]["Plan"]
    walk(root)
    indexes = sorted({node["Index Name"] for node in nodes if "Index Name" in node})
    orders_access = [
        node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
        for node in nodes
        if node.get("Relation Name") == "orders_order"
        or node.get("Index Name", "").startswith(("order_", "orders_order_"))
    ]
    summary = {
        "orders_order_access": orders_access,
        "indexes": indexes,
        "total_cost": root["Total Cost"],
        **{f"uses_{name}": name in indexes for name in PARTIAL_INDEXES},
    }
    if jit_above_cost is not None:
        summary["jit"] = jit_above_cost >= 0 and root["Total Cost"] > jit_above_cost
    return summary


def _explain_specs(date_from: date, date_to: date, merchant_id: int) -> dict:
    """The calls whose SQL is explained: the timed cases, and the default 30 days."""
    default_from = date_to - timedelta(days=29)
    return {
        "top-products:all": {"report": "top", "from": date_from, "merchant_id": None},
        "top-products:merchant": {"report": "top", "from": date_from, "merchant_id": merchant_id},
        "revenue:all": {"report": "revenue", "from": date_from, "merchant_id": None},
        "revenue:merchant": {"report": "revenue", "from": date_from, "merchant_id": merchant_id},
        "merchants:all": {"report": "merchants", "from": date_from, "merchant_id": None},
        "top-products:all:30d": {"report": "top", "from": default_from, "merchant_id": None},
        "revenue:all:30d": {"report": "revenue", "from": default_from, "merchant_id": None},
        "merchants:all:30d": {"report": "merchants", "from": default_from, "merchant_id": None},
    }


def explain_selectors(
    *, dsn: str, date_from: date, date_to: date, merchant_id: int, operator_key: str
) -> dict:
    """EXPLAIN (FORMAT JSON) of the SQL the report selectors send, and of the guarded
    statements the event-loop route sends for `operator_key` (keys `route:...`), from a
    child process whose Django database is the bench database."""
    specs = _explain_specs(date_from, date_to, merchant_id)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "geomarket.settings.development",
        "DATABASE_URL": dsn,
        "DATABASE_POOL": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.analytics", "explain"],
        cwd=ROOT,
        env=env,
        input=json.dumps(
            {
                "date_to": date_to.isoformat(),
                "specs": specs,
                "route": {
                    "from": date_from.isoformat(),
                    "merchant_id": merchant_id,
                    "operator_key": operator_key,
                },
            },
            default=str,
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


class _Planned(Exception):
    pass


def _explain_main() -> None:
    """`python -m bench.scenarios.analytics explain`: the child process of `explain_selectors`.

    Every query a selector sends is EXPLAINed instead of run (the selector is then
    stopped), with the parameters Django binds, so the plan is the server's.
    """
    import django

    django.setup()
    from django.db import connection

    from analytics.selectors import (
        DateRange,
        merchants_report,
        revenue_json_statement,
        revenue_report,
        top_products,
        top_products_json_statement,
    )

    spec = json.loads(sys.stdin.read())
    date_to = date.fromisoformat(spec["date_to"])
    plans: dict[str, list] = {}
    current = {"key": None}

    def explain_instead(execute, sql, params, many, context):
        cursor = context["cursor"].cursor
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plans[current["key"]] = cursor.fetchone()[0]
        raise _Planned

    calls = {
        "top": lambda r, m: top_products(range_=r, merchant_id=m, top=TOP),
        "revenue": lambda r, m: revenue_report(range_=r, merchant_id=m),
        "merchants": lambda r, m: merchants_report(range_=r),
    }
    connection.ensure_connection()
    with connection.execute_wrapper(explain_instead):
        for key, call in spec["specs"].items():
            current["key"] = key
            range_ = DateRange(date.fromisoformat(call["from"]), date_to)
            with suppress(_Planned):
                calls[call["report"]](range_, call["merchant_id"])
    route = spec["route"]
    route_range = DateRange(date.fromisoformat(route["from"]), date_to)
    one = {"merchant_id": route["merchant_id"], "operator_key": route["operator_key"]}
    routed = {
        "route:revenue:all": revenue_json_statement(
            range_=route_range, operator_key=route["operator_key"]
        ),
        "route:revenue:merchant": revenue_json_statement(range_=route_range, **one),
        "route:top-products:merchant": top_products_json_statement(
            range_=route_range, top=TOP, **one
        ),
    }
    with connection.cursor() as cursor:
        for key, statement in routed.items():
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement.sql, statement.params)
            plans[key] = cursor.fetchone()[0]
    print(json.dumps(plans))


# --- the scenario ------------------------------------------------------------------------


def run(*, base_url: str, dsn: str, rng: random.Random, log) -> dict:
    """`rng` is unused: every case is fixed by the date range and the busiest merchant."""
    measurements: list[Measurement] = []
    failures: list[str] = []
    load_start = list(os.getloadavg())
    date_from, date_to = report_range()
    bounds = _bounds(date_from, date_to)
    connection = psycopg.connect(dsn, autocommit=True)
    token = operator_token(connection)
    merchant_id, merchant_orders = connection.execute(BUSIEST_MERCHANT_SQL, bounds).fetchone()
    jit_on, jit_above = connection.execute(
        "SELECT current_setting('jit') = 'on', current_setting('jit_above_cost')::float8"
    ).fetchone()
    log(
        f"  {date_from} to {date_to} ({REPORT_DAYS} days); one merchant: {merchant_id}, the"
        f" busiest ({merchant_orders} delivered orders)"
    )
    headers = {"Authorization": f"Token {token}"}
    results: dict[str, dict] = {}
    try:
        with BlockingClient(base_url, headers=headers) as client:
            request_floor = _request_floor(client, log, date_to=date_to, merchant_id=merchant_id)
            measurements.append(request_floor)
            for case in cases(date_from, date_to, merchant_id):
                results[case.key] = _measure_case(case, client, connection, log, failures)
                measurements.extend(results[case.key]["measurements"])
        plans = explain_selectors(
            dsn=dsn,
            date_from=date_from,
            date_to=date_to,
            merchant_id=merchant_id,
            operator_key=token,
        )
        sql_plans = {}
        for case in cases(date_from, date_to, merchant_id):
            sql_plans[case.key] = connection.execute(
                "EXPLAIN (FORMAT JSON) " + case.sql, case.params
            ).fetchone()[0]
    finally:
        connection.close()

    threshold = jit_above if jit_on else None
    explain = {
        # The route's connections run without JIT.
        key: {
            "api": plan_summary(
                plan, jit_above_cost=None if key.startswith("route:") else threshold
            )
        }
        for key, plan in plans.items()
    }
    for key, plan in sql_plans.items():
        explain[key]["sql"] = plan_summary(plan, jit_above_cost=threshold)
    log("  plans of the selectors' and the route's queries (orders_order access; partial indexes):")
    for key, entry in explain.items():
        api = entry["api"]
        used = [name for name in PARTIAL_INDEXES if api[f"uses_{name}"]]
        log(
            f"    {key:<24} {', '.join(api['orders_order_access']) or '-'}"
            f"; {', '.join(used) or 'no partial index'}{'; JIT' if api.get('jit') else ''}"
        )

    ratios = {}
    for key, result in results.items():
        api, sql = result["api"], result["sql"]
        label = key.replace("-", "_").replace(":", "_")
        ratios[f"analytics_{label}_p50_vs_sql"] = {
            "value": round(api.p50_ms / sql.p50_ms, 3) if sql.p50_ms else float("nan"),
            "target": P50_TARGET,
        }
        ratios[f"analytics_{label}_p95_vs_sql"] = {
            "value": round(api.p95_ms / sql.p95_ms, 3) if sql.p95_ms else float("nan"),
            "target": None,
        }
    # What a report request costs with almost no data: the one-merchant reports cannot
    # come closer to their SQL than this.
    for key, result in results.items():
        if key.endswith(":merchant"):
            label = key.split(":")[0].replace("-", "_")
            ratios[f"request_floor_p50_vs_{label}_merchant_sql"] = {
                "value": round(request_floor.p50_ms / result["sql"].p50_ms, 3),
                "target": None,
            }
    return {
        "measurements": [m.as_dict() for m in measurements],
        "ratios": ratios,
        "range": {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()},
        "merchant": {"id": merchant_id, "delivered_orders": merchant_orders},
        "rows": {key: result["rows"] for key, result in results.items()},
        "samples": {key: result["samples"] for key, result in results.items()},
        "explain": explain,
        "partial_indexes_used": {
            name: sorted(key for key, entry in explain.items() if entry["api"][f"uses_{name}"])
            for name in PARTIAL_INDEXES
        },
        "load_average": {"start": load_start, "end": list(os.getloadavg())},
        "failures": failures,
    }


def _request_floor(client, log, *, date_to: date, merchant_id: int, samples=200) -> Measurement:
    """A report request with almost no query: one merchant's revenue over a single day.

    It pays everything the measured reports pay (token, permission, parameters, one
    query, rendering) except their data, so no report can come closer to its SQL than
    this request's own time."""
    day = date_to.isoformat()
    path = "/api/v1/analytics/revenue/?" + urlencode(
        {"date_from": day, "date_to": day, "merchant_id": merchant_id}
    )
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(path)
        if response.status_code == 200:
            latencies.append(time.perf_counter() - started)
    floor = summarize(
        "report request floor (revenue, 1 day)",
        1,
        latencies,
        samples - len(latencies),
        sum(latencies),
    )
    log(f"  {floor.name:<38} p50 {floor.p50_ms:8.2f} ms  p95 {floor.p95_ms:8.2f}")
    return floor


def _measure_case(case: Case, client, connection, log, failures) -> dict:
    """A check, then API requests and SQL queries alternating, one client."""
    started = time.perf_counter()
    response = client.get(case.path)
    api_first = time.perf_counter() - started
    started = time.perf_counter()
    sql_rows = connection.execute(case.sql, case.params).fetchall()
    sql_first = time.perf_counter() - started
    if response.status_code != 200:
        failures.append(f"{case.name}: {response.status_code} {response.text[:300]}")
        api_rows = []
    else:
        api_rows = response.json()
        if case.api_keys(api_rows) != case.sql_keys(sql_rows):
            failures.append(
                f"{case.name}: the API's {len(api_rows)} rows differ from the SQL's {len(sql_rows)}"
            )
    samples = max(MIN_SAMPLES, min(MAX_SAMPLES, int(BUDGET_S / (api_first + sql_first))))
    api_latencies: list[float] = []
    sql_latencies: list[float] = []
    errors = 0
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(case.path)
        elapsed = time.perf_counter() - started
        if response.status_code == 200:
            api_latencies.append(elapsed)
        else:
            errors += 1
        started = time.perf_counter()
        connection.execute(case.sql, case.params).fetchall()
        sql_latencies.append(time.perf_counter() - started)
    if errors:
        failures.append(f"{case.name}: {errors} failed requests")
    api = summarize(case.name, 1, api_latencies, errors, sum(api_latencies))
    sql = summarize(
        f"raw SQL {case.name[len('analytics/') :]}", 1, sql_latencies, 0, sum(sql_latencies)
    )
    for measurement in (api, sql):
        log(
            f"  {measurement.name:<38} p50 {measurement.p50_ms:9.2f} ms"
            f"  p95 {measurement.p95_ms:9.2f}  ({measurement.requests} samples,"
            f" errors {measurement.errors})"
        )
    log(
        f"    rows: API {len(api_rows)}, SQL {len(sql_rows)};"
        f" p50 API/SQL {api.p50_ms / sql.p50_ms:.2f}"
    )
    return {
        "api": api,
        "sql": sql,
        "measurements": [api, sql],
        "rows": {"api": len(api_rows), "sql": len(sql_rows)},
        "samples": samples,
    }


def main() -> int:
    """`python -m bench.scenarios.analytics`: this scenario alone, against `BENCH_DATABASE_URL`."""
    return run_alone("analytics", run, ratio_width=44)


if __name__ == "__main__":
    if sys.argv[1:] == ["explain"]:
        _explain_main()
    else:
        raise SystemExit(main())
