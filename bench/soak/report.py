"""What the soak prints after the load: traffic by endpoint and status, the server's
errors and replaced workers, what `/healthz` saw, the soak's orders."""

import re
from collections import Counter
from pathlib import Path

import psycopg

from bench.common.report import log, percentile
from bench.soak.city import Marks
from bench.soak.load import Load
from bench.soak.stack import EXCEPTION_LINE


def _ms(values: list[float], fraction: float) -> str:
    if not values:
        return "-"
    return f"{percentile(sorted(values), fraction) * 1000:.0f}"


def report_traffic(load: Load, seconds: float) -> None:
    stats = load.stats
    log()
    log(f"{'endpoint':<38} {'requests':>9} {'p50 ms':>7} {'p95 ms':>7}  statuses")
    for label in sorted(stats.statuses, key=lambda k: -stats.statuses[k].total()):
        counter = stats.statuses[label]
        codes = ", ".join(f"{code} x {n:,}" for code, n in sorted(counter.items()))
        failed = stats.transport.get(label)
        if failed:
            codes += f", failed x {failed}"
        values = stats.latencies[label]
        log(
            f"{label:<38} {counter.total():>9,} {_ms(values, 0.5):>7} {_ms(values, 0.95):>7}"
            f"  {codes}"
        )
    total = stats.total()
    overall = Counter()
    for counter in stats.statuses.values():
        overall.update(counter)
    log()
    log(f"requests: {total:,} in {seconds:.0f} s = {total / seconds:.0f} requests/s")
    log(
        "by status: "
        + ", ".join(f"{code} x {n:,}" for code, n in sorted(overall.items()))
        + (f", failed x {sum(stats.transport.values())}" if stats.transport else "")
    )
    errors = {code: n for code, n in overall.items() if code >= 400}
    log(
        "errors by status: "
        + (", ".join(f"{code} x {n:,}" for code, n in sorted(errors.items())) or "none")
    )
    if stats.cache_down:
        log(
            "503 while the cache's Redis was away, as the contract says (not counted above): "
            + ", ".join(f"{label} x {n}" for label, n in stats.cache_down.most_common())
        )
    for phase in ("normal", "redis down", "broker down"):
        counter = stats.phases.get(phase)
        if counter:
            log(
                f"  while {phase:<12} "
                + ", ".join(f"{key} x {n:,}" for key, n in sorted(counter.items()))
            )
    if stats.samples:
        log("first unexpected answers:")
        for sample in stats.samples[:10]:
            log(f"  {sample}")
    if stats.failures:
        log("failed requests:")
        for failure in stats.failures[:10]:
            log(f"  {failure}")


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def server_errors(log_path: Path) -> Counter:
    """The exception that ended each 500 in the web server's log, by path and message."""
    found: Counter = Counter()
    path, last = None, None
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    for line in [*lines, "0000-00-00 00:00:00 end"]:
        if LOG_RECORD.match(line):
            if path is not None:
                found[f"{path}: {last or '?'}"] += 1
            match = re.search(r"Internal Server Error: (\S+)", line)
            path = re.sub(r"/\d+/", "/{id}/", match.group(1)) if match else None
            last = None
        elif path is not None and EXCEPTION_LINE.match(line):
            last = line.strip()[:160]
        elif path is not None and last is not None and last.endswith(":") and line.strip():
            last = f"{last} {line.strip()}"[:160]
    return found


def worker_replacements(log_path: Path) -> list[str]:
    """uvicorn's supervisor kills and replaces a worker that died or did not answer its
    health check within 5 s; each time it logs `Child process [pid] died`."""
    if not log_path.exists():
        return []
    return [
        line[line.index("Child process") :].strip()
        for line in log_path.read_text(errors="replace").splitlines()
        if "Child process [" in line and "died" in line
    ]


def report_health(load: Load) -> None:
    codes = Counter(status for _, status, _ in load.health_log)
    log(
        "healthz (polled each second, not counted above): "
        + ", ".join(f"{code or 'failed'} x {n}" for code, n in sorted(codes.items()))
    )
    for check in ("database", "cache", "broker"):
        # A span runs from the first poll that names the check failing to the last one
        # before a poll that finds it healthy again.
        spans: list[list[float]] = []
        failing_now = False
        for at, status, checks in load.health_log:
            failing = status == 0 or checks.get(check, "ok") != "ok"
            if failing and failing_now:
                spans[-1][1] = at
            elif failing:
                spans.append([at, at])
            failing_now = failing
        if spans:
            log(
                f"  {check} reported failing at "
                + ", ".join(f"{a:.0f}-{b:.0f} s" for a, b in spans)
            )


def report_orders(dsn: str, marks: Marks) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        by_status = connection.execute(
            "SELECT status, count(*) FROM orders_order WHERE id > %s GROUP BY 1 ORDER BY 2 DESC",
            [marks.order_id],
        ).fetchall()
    log(
        f"soak orders: {sum(n for _, n in by_status):,} ("
        + ", ".join(f"{status} {n:,}" for status, n in by_status)
        + ")"
    )
