"""Load generation and latency statistics shared by every benchmark scenario."""

import asyncio
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import httpx


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

    def as_dict(self) -> dict:
        return asdict(self)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarize(name, concurrency, latencies, errors, seconds, hits=None) -> Measurement:
    values = sorted(latencies)
    return Measurement(
        name=name,
        concurrency=concurrency,
        requests=len(values),
        errors=errors,
        seconds=round(seconds, 3),
        p50_ms=round(statistics.median(values) * 1000, 3) if values else float("nan"),
        p95_ms=round(_percentile(values, 0.95) * 1000, 3),
        p99_ms=round(_percentile(values, 0.99) * 1000, 3),
        rps=round(len(values) / seconds, 1) if seconds else 0.0,
        cache_hit_ratio=None if hits is None or not values else round(hits / len(values), 3),
    )


async def _http_load(
    *,
    base_url: str,
    paths: Iterator[str],
    concurrency: int,
    duration: float,
    max_requests: int,
) -> tuple[list[float], int, int, float]:
    latencies: list[float] = []
    errors = 0
    hits = 0
    sent = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker():
            nonlocal errors, hits, sent
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                path = next(paths)
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.HTTPError:
                    errors += 1
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code >= 500:
                    errors += 1
                    continue
                latencies.append(elapsed)
                if response.headers.get("X-Cache") == "HIT":
                    hits += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, hits, time.perf_counter() - started


def http_scenario(
    *,
    name: str,
    base_url: str,
    paths: Iterator[str],
    concurrency: int,
    duration: float = 8.0,
    max_requests: int = 20_000,
) -> Measurement:
    latencies, errors, hits, seconds = asyncio.run(
        _http_load(
            base_url=base_url,
            paths=paths,
            concurrency=concurrency,
            duration=duration,
            max_requests=max_requests,
        )
    )
    return summarize(name, concurrency, latencies, errors, seconds, hits)


def sql_scenario(
    *,
    name: str,
    dsn: str,
    make_call: Callable[[], tuple[str, dict]],
    concurrency: int,
    duration: float = 8.0,
) -> Measurement:
    """The same work sent straight through psycopg, one connection per client thread."""
    import psycopg

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def client():
        nonlocal errors
        local: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as connection:
            while time.perf_counter() < deadline:
                sql, params = make_call()
                started = time.perf_counter()
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(sql, params)
                        cursor.fetchall()
                except psycopg.Error:
                    errors += 1
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
