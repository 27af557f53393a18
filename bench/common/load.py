"""Load generation and latency statistics shared by every benchmark scenario.

HTTP load comes from `bench.common.http1`, a lean keep-alive client, one connection per client:
the generator runs on the same cores as the server, so it must cost it as little CPU as
it can."""

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from bench.common.http1 import Connection, ProtocolError
from bench.common.report import percentile


@dataclass
class Measurement:
    name: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float
    cache_hit_ratio: float | None = None
    # Raw latencies in seconds, kept so slices of one scenario can be merged (`merged`).
    latencies: list[float] = field(default_factory=list, repr=False)
    hits: int | None = None

    def as_dict(self) -> dict:
        skipped = {"latencies", "hits"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skipped}


def merged(slices: list[Measurement]) -> Measurement:
    """One measurement from slices of the same scenario run at different times."""
    hits = None if any(part.hits is None for part in slices) else sum(p.hits for p in slices)
    return summarize(
        slices[0].name,
        slices[0].concurrency,
        [latency for part in slices for latency in part.latencies],
        sum(part.errors for part in slices),
        sum(part.seconds for part in slices),
        hits,
    )


def interleaved(rounds: int, **scenarios: Callable[[], Measurement]) -> dict[str, Measurement]:
    """Run each scenario in `rounds` slices, taking turns, and merge each one's slices.

    The cores are shared with the machine's other work, whose load drifts over seconds:
    measured in turns, an API path and its raw SQL baseline see the same drift, so their
    ratio is steadier than when one is measured wholly after the other."""
    slices: dict[str, list[Measurement]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, run in scenarios.items():
            slices[name].append(run())
    return {name: merged(parts) for name, parts in slices.items()}


@dataclass(frozen=True)
class Request:
    """One request for `http_scenario` when a bare path (a GET) is not enough."""

    path: str
    method: str = "GET"
    json: Any = None
    headers: dict[str, str] | None = None
    # When set, a response with any other status counts as an error, not only a 5xx.
    expect: int | None = None


def summarize(name, concurrency, latencies, errors, seconds, hits=None) -> Measurement:
    values = sorted(latencies)
    return Measurement(
        name=name,
        concurrency=concurrency,
        requests=len(values),
        errors=errors,
        seconds=round(seconds, 3),
        p50_ms=round(statistics.median(values) * 1000, 3) if values else float("nan"),
        p95_ms=round(percentile(values, 0.95) * 1000, 3),
        p99_ms=round(percentile(values, 0.99) * 1000, 3),
        rps=round(len(values) / seconds, 1) if seconds else 0.0,
        cache_hit_ratio=None if hits is None or not values else round(hits / len(values), 3),
        latencies=values,
        hits=hits,
    )


async def _http_load(
    *,
    base_url: str,
    paths: Iterator[str | Request],
    concurrency: int,
    duration: float,
    max_requests: int,
    on_error: Callable[[str], None] | None,
) -> tuple[list[float], int, int, float]:
    latencies: list[float] = []
    errors = 0
    hits = 0
    sent = 0
    deadline = time.perf_counter() + duration

    async def worker():
        nonlocal errors, hits, sent
        connection = Connection(base_url)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                request = next(paths)
                if isinstance(request, str):
                    request = Request(request)
                headers = dict(request.headers or {})
                body = None
                if request.json is not None:
                    body = json.dumps(request.json).encode()
                    headers["Content-Type"] = "application/json"
                started = time.perf_counter()
                try:
                    response = await connection.request(
                        request.method, request.path, body=body, headers=headers
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                    errors += 1
                    if on_error is not None:
                        on_error(f"{request.method} {request.path}: {exc!r}")
                    continue
                elapsed = time.perf_counter() - started
                unexpected = (
                    response.status_code != request.expect
                    if request.expect is not None
                    else response.status_code >= 500
                )
                if unexpected:
                    errors += 1
                    if on_error is not None:
                        on_error(
                            f"{request.method} {request.path}: {response.status_code}"
                            f" {response.text[:300]}"
                        )
                    continue
                latencies.append(elapsed)
                if response.headers.get("x-cache") == "HIT":
                    hits += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, hits, time.perf_counter() - started


def http_scenario(
    *,
    name: str,
    base_url: str,
    paths: Iterator[str | Request],
    concurrency: int,
    duration: float = 8.0,
    max_requests: int = 20_000,
    on_error: Callable[[str], None] | None = None,
) -> Measurement:
    """`paths` yields paths to GET or `Request`s (any method, a JSON body, headers)."""
    latencies, errors, hits, seconds = asyncio.run(
        _http_load(
            base_url=base_url,
            paths=paths,
            concurrency=concurrency,
            duration=duration,
            max_requests=max_requests,
            on_error=on_error,
        )
    )
    return summarize(name, concurrency, latencies, errors, seconds, hits)


def sql_scenario(
    *,
    name: str,
    dsn: str,
    concurrency: int,
    make_call: Callable[[], tuple[str, dict]] | None = None,
    make_work: Callable[[], Callable[[Any], None]] | None = None,
    duration: float = 8.0,
    on_error: Callable[[str], None] | None = None,
) -> Measurement:
    """The same work sent straight through psycopg, one connection per client thread.

    Each call is either one statement (`make_call` gives the SQL and its parameters) or a
    unit of work (`make_work` gives a function that takes the autocommit connection, say
    to run one transaction); only the call itself is timed.
    """
    import psycopg

    if (make_call is None) == (make_work is None):
        raise ValueError("give exactly one of make_call and make_work")
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def one_statement(sql, params):
        def work(connection):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchall()

        return work

    def client():
        nonlocal errors
        local: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as connection:
            while time.perf_counter() < deadline:
                work = make_work() if make_work is not None else one_statement(*make_call())
                started = time.perf_counter()
                try:
                    work(connection)
                except psycopg.Error as exc:
                    with lock:
                        errors += 1
                    if on_error is not None:
                        on_error(f"{name}: {exc!r}")
                    continue
                local.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarize(name, concurrency, latencies, errors, time.perf_counter() - started)
