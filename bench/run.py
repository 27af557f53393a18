"""`make bench`: the project's performance instrument.

1. Reuse or create the bench database (`seed_demo --preset bench`).
2. Start the production server (uvicorn, DEBUG off, a worker per core) as its own process.
3. Run each scenario module against it, with raw-SQL baselines in the same run.
4. Print a table of latencies and ratios; write the same data as JSON to `BENCH_OUT`.

`BENCH_SCENARIOS=orders` (a comma list of search, orders, dispatch, analytics, api, routes,
replica) runs only some scenarios. A scenario that reports `failures` (the order scenario's
stock check, the dispatch answers' checks) fails the run.
"""

import json
import os
import sys
import time
from pathlib import Path

# `make bench` runs this file as a script: the repository must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from bench.common.harness import bench_server, prepare
    from bench.common.processes import workers as bench_workers
    from bench.common.report import log, log_ratios

    url, dsn, rng = prepare()
    # After Django is set up: the dispatch scenario's ETA provider is a project class.
    from bench.scenarios import analytics, api, dispatch, orders, replica, routes, search

    workers = bench_workers()
    known = ["search", "orders", "dispatch", "analytics", "api", "routes", "replica"]
    scenarios = os.environ.get("BENCH_SCENARIOS", ",".join(known)).replace(" ", "").split(",")
    unknown = set(scenarios) - set(known)
    if unknown:
        raise SystemExit(f"unknown BENCH_SCENARIOS: {', '.join(sorted(unknown))}")
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workers": workers,
        "scenarios": {},
    }
    # Suggest's and order placement's per-client limits would turn a load test into a test
    # of 429s (the limiter still runs, with a limit never reached).
    # Confirmations of bench orders go to a broker database no development worker reads.
    broker_url = orders.bench_broker_url()
    extra_env = {
        "SUGGEST_RATE_LIMIT_PER_MINUTE": "100000000",
        "ORDER_RATE_LIMIT_PER_MINUTE": "100000000",
        "ORDER_IP_RATE_LIMIT_PER_MINUTE": "100000000",
        "CELERY_BROKER_URL": broker_url,
        # The ETA scenario's stand-in routing engine answers in 100 ms.
        **dispatch.SERVER_ENV,
    }
    with bench_server(url, workers=workers, extra_env=extra_env) as base:
        if "search" in scenarios:
            log("search:")
            report["scenarios"]["search"] = search.run(
                base_url=base, dsn=dsn, workers=workers, rng=rng, log=log
            )
        if "orders" in scenarios:
            log("orders:")
            report["scenarios"]["orders"] = orders.run(
                base_url=base,
                dsn=dsn,
                database_url=url,
                server_env=extra_env,
                rng=rng,
                log=log,
            )
        if "dispatch" in scenarios:
            log("dispatch:")
            report["scenarios"]["dispatch"] = dispatch.run(base_url=base, dsn=dsn, rng=rng, log=log)
        if "analytics" in scenarios:
            log("analytics:")
            report["scenarios"]["analytics"] = analytics.run(
                base_url=base, dsn=dsn, rng=rng, log=log
            )
        if "api" in scenarios:
            log("api:")
            report["scenarios"]["api"] = api.run(
                base_url=base,
                dsn=dsn,
                rng=rng,
                log=log,
                workers=workers,
                server_env=extra_env,
            )
        if "replica" in scenarios:
            log("replica:")
            report["scenarios"]["replica"] = replica.run(
                base_url=base, dsn=dsn, rng=rng, log=log, workers=workers, server_env=extra_env
            )
        if "routes" in scenarios:
            log("routes:")
            report["scenarios"]["routes"] = routes.run(dsn=dsn, rng=rng, log=log)

    log("")
    log(f"{'ratio':<34} {'value':>8}  target")
    for scenario in report["scenarios"].values():
        log_ratios(scenario["ratios"])
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2))
        log(f"wrote {out}")
    failures = [
        f"{name}: {failure}"
        for name, scenario in report["scenarios"].items()
        for failure in scenario.get("failures", [])
    ]
    for failure in failures:
        log(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
