"""`make bench`: the project's performance instrument.

1. Reuse or create the bench database (`seed_demo --preset bench`).
2. Start the production server (uvicorn, DEBUG off, a worker per core) as its own process.
3. Run each scenario module against it, with raw-SQL baselines in the same run.
4. Print a table of latencies and ratios; write the same data as JSON to `BENCH_OUT`.
"""

import json
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    import django

    from bench import search, server

    django.setup()
    # The load generator must not spend its time logging every request it sends.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = server.bench_database_url()
    dsn = server.bench_database_ready(url, log=log)
    workers = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))
    rng = random.Random(int(os.environ.get("BENCH_SEED", "42")))
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workers": workers,
        "scenarios": {},
    }
    # Suggest's per-client limit would turn a load test into a test of 429s.
    extra_env = {"SUGGEST_RATE_LIMIT_PER_MINUTE": "100000000"}
    with server.production_server(database_url=url, workers=workers, extra_env=extra_env) as base:
        log(f"server: {base} ({workers} uvicorn workers, production settings, DEBUG off)")
        log("search:")
        report["scenarios"]["search"] = search.run(base_url=base, dsn=dsn, rng=rng, log=log)

    log("")
    log(f"{'ratio':<34} {'value':>8}  target")
    for scenario in report["scenarios"].values():
        for name, ratio in scenario["ratios"].items():
            log(f"{name:<34} {ratio['value']:>8}  {ratio['target'] or '(reference)'}")
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2))
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
