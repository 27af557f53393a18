"""`make soak` (`python -m bench.soak`): start the stack, drive the load through the
faults, drain, then report and check the invariants; see the package's docstring."""

import asyncio
import atexit
import contextlib
import os
import random
import shutil
import signal
import sys
import time

from bench.common import ROOT
from bench.common.db import psycopg_dsn
from bench.common.processes import free_port, port_is_open, uvicorn_argv
from bench.common.report import log
from bench.soak.checks import Check, checks_run, drain
from bench.soak.city import city_prepare, database_recreate, soak_lock, stock_snapshot
from bench.soak.config import HOT_STOCK, RUN_DIR, env_number, fault_plan, soak_database_url
from bench.soak.load import Load
from bench.soak.report import (
    report_health,
    report_orders,
    report_traffic,
    server_errors,
    worker_replacements,
)
from bench.soak.stack import (
    Child,
    RedisServer,
    Stack,
    Supervisor,
    server_env,
    wait_healthy,
)
from bench.soak.webhooks import Receivers


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main() -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    duration = env_number("SOAK_SECONDS", 300.0, 30.0)
    drain_timeout = env_number("SOAK_DRAIN_SECONDS", 180.0, 10.0)
    workers = int(env_number("SOAK_WORKERS", float(os.cpu_count() or 2), 1.0))
    seed = int(env_number("SOAK_SEED", 42.0, 0.0))
    rng = random.Random(seed)
    url = soak_database_url()
    dsn = psycopg_dsn(url)

    signal.signal(signal.SIGTERM, _terminated)
    stack = Stack()
    atexit.register(stack.stop_all)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    log(f"soak: {duration:.0f} s of load, logs in {RUN_DIR.relative_to(ROOT)}/")
    try:
        with soak_lock(dsn):
            cache = RedisServer("cache", RUN_DIR / "redis-cache", free_port())
            stack.add(cache.child)
            cache.start()
            broker = RedisServer("broker", RUN_DIR / "redis-broker", free_port())
            stack.add(broker.child)
            broker.start()
            log(f"redis-server: cache on {cache.port}, broker on {broker.port}")
            database_recreate(url, redis_url=cache.url(0))
            city = city_prepare(dsn, rng)
            log(
                f"actors: {len(city.buyers)} buyers, {len(city.owners)} owners, "
                f"{len(city.couriers)} couriers, 1 operator; {len(city.spots)} merchants to "
                f"order from, {len(city.hot)} hot products with {HOT_STOCK} in stock"
            )

            env = server_env(database_url=url, cache=cache, broker=broker)
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            python = sys.executable
            # Info shows the supervisor replacing a worker process that hung or died.
            uvicorn = uvicorn_argv(
                "geomarket.asgi:application", port=port, workers=workers, log_level="info"
            )
            celery = [python, "-m", "celery", "-A", "geomarket"]
            worker_args = ["worker", "--loglevel", "INFO", "--concurrency", "2"]
            worker_args += ["--hostname", "soak@%h"]
            beat_args = ["beat", "--loglevel", "INFO"]
            beat_args += ["--schedule", str(RUN_DIR / "celerybeat-schedule")]
            web = stack.add(Child("uvicorn", uvicorn, env=env, log_path=RUN_DIR / "web.log"))
            worker = stack.add(
                Child(
                    "celery worker", celery + worker_args, env=env, log_path=RUN_DIR / "worker.log"
                )
            )
            # Deliveries have a queue of their own, served by threads (as in make run).
            webhook_args = ["worker", "--loglevel", "INFO", "--queues", "webhooks"]
            webhook_args += ["--pool", "threads", "--concurrency", "8"]
            webhook_args += ["--hostname", "soak-webhooks@%h"]
            webhook_worker = stack.add(
                Child(
                    "celery webhook worker",
                    celery + webhook_args,
                    env=env,
                    log_path=RUN_DIR / "webhook-worker.log",
                )
            )
            beat = stack.add(
                Child("celery beat", celery + beat_args, env=env, log_path=RUN_DIR / "beat.log")
            )
            receivers = Receivers(dict(os.environ))
            for child in receivers.children:
                stack.add(child)
            relay = stack.add(
                Child(
                    "outbox relay",
                    [python, "manage.py", "relay_outbox"],
                    env=env,
                    log_path=RUN_DIR / "relay.log",
                )
            )
            processes = [web, worker, webhook_worker, beat, relay, *receivers.children]
            for child in processes:
                child.start()
            wait_healthy(base_url, web)
            for child, port in zip(receivers.children, receivers.ports.values(), strict=True):
                while not port_is_open(port):
                    if not child.running():
                        raise SystemExit(f"{child.name} exited:\n{child.tail()}")
                    time.sleep(0.05)
            receivers.register(base_url=base_url, city=city)
            log(
                f"web: {base_url} (uvicorn, {workers} workers, production settings); "
                "celery worker, webhook worker, outbox relay and beat started"
            )
            log(
                "webhooks: receivers on "
                + ", ".join(f"{name} {port}" for name, port in receivers.ports.items())
                + "; endpoints: "
                + "; ".join(endpoint.name for endpoint in receivers.endpoints)
            )

            marks = stock_snapshot(dsn)
            plan = fault_plan(duration)
            log("faults: " + "; ".join(f"{f.name} {f.start:.0f}-{f.end:.0f} s" for f in plan))
            supervisor = Supervisor(processes, clock=lambda: load.elapsed())
            load = Load(
                city=city,
                marks=marks,
                base_url=base_url,
                duration=duration,
                dsn=dsn,
                redis={"cache": cache, "broker": broker},
                seed=seed,
                supervisor=supervisor,
            )
            log("load:")
            seconds = asyncio.run(load.run())
            drained = drain(dsn, marks, drain_timeout, supervisor, receivers)

            report_traffic(load, seconds)
            errors = server_errors(web.log_path)
            if errors:
                log(f"server errors in {web.log_path.relative_to(ROOT)} (the last exception):")
                for text, count in errors.most_common(10):
                    log(f"  {count:>5} x {text}")
            report_health(load)
            report_orders(dsn, marks)
            results = checks_run(dsn, marks, load, drained, receivers)
            replaced = worker_replacements(web.log_path)
            results.append(
                Check(
                    "web server, workers, relay, beat and receivers stayed up",
                    not supervisor.exits and not replaced,
                    f"{len(supervisor.exits)} process exits (each restarted at once), "
                    f"{len(replaced)} uvicorn worker processes replaced (hung or dead)"
                    + "".join(f"\n      {text}" for text in [*supervisor.exits, *replaced]),
                )
            )
            log()
            log("invariants:")
            for check in results:
                log(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
            failed = [check for check in results if not check.passed]
            log()
            log(
                f"soak: {'FAILED' if failed else 'passed'} ({len(results) - len(failed)}"
                f"/{len(results)} invariants hold)"
            )
            return 1 if failed else 0
    except KeyboardInterrupt:
        log("\ninterrupted")
        return 130
    finally:
        stack.stop_all()
        with contextlib.suppress(OSError):
            for name in ("redis-cache", "redis-broker"):
                shutil.rmtree(RUN_DIR / name, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
