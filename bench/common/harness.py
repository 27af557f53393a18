"""What every bench run does around its scenarios: Django set up, the bench database ready,
the production server started; and a scenario run alone (`python -m bench.scenarios.<name>`)."""

import json
import logging
import os
import random
import sys
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, db, processes
from bench.common.report import log, log_ratios


def prepare() -> tuple[str, str, random.Random]:
    """The bench database's URL and DSN, once it is ready, and the run's random source."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geomarket.settings.development")
    import django

    django.setup()
    # The load generator must not spend its time logging every request it sends.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    url = db.bench_database_url()
    dsn = db.bench_database_ready(url, log=log)
    return url, dsn, random.Random(int(os.environ.get("BENCH_SEED", "42")))


@contextmanager
def bench_server(url: str, *, workers: int, extra_env: dict | None = None):
    """The production server on the bench database, announced once it answers."""
    with processes.production_server(
        database_url=url, workers=workers, extra_env=extra_env
    ) as base:
        log(f"server: {base} ({workers} uvicorn workers, production settings, DEBUG off)")
        yield base


def run_alone(name: str, run, *, extra_env: dict | None = None, ratio_width: int = 34) -> int:
    """One scenario against `BENCH_DATABASE_URL` (created and seeded when missing); its
    ratios and failures printed, its result written to `BENCH_OUT` when that is set."""
    url, dsn, rng = prepare()
    with bench_server(url, workers=processes.workers(), extra_env=extra_env) as base:
        log(f"{name}:")
        result = run(base_url=base, dsn=dsn, rng=rng, log=log)
    log("")
    log_ratios(result["ratios"], width=ratio_width)
    for failure in result["failures"]:
        log(f"FAILED {failure}")
    if os.environ.get("BENCH_OUT"):
        Path(os.environ["BENCH_OUT"]).write_text(json.dumps(result, indent=2, default=str))
    return 1 if result["failures"] else 0
