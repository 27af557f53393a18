"""`GET /healthz`: the database, the cache and the broker, each with a short timeout; and
the read replicas, when there are any, which cannot fail it."""

import functools
import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django_redis import get_redis_connection

from geomarket.api.responses import json_response
from geomarket.celery import app as celery_app
from geomarket.db import replicas

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    get_redis_connection("default").ping()


@functools.cache
def _redis_broker(url: str, timeout: float) -> redis.Redis:
    # Kept by the process, with its pool of connections: a new kombu connection per check
    # cost a TCP connection, a client and a package-metadata lookup, some 8 ms a request.
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def check_broker() -> None:
    url = celery_app.conf.broker_url
    timeout = settings.HEALTHCHECK_TIMEOUT_SECONDS
    if url.startswith(("redis://", "rediss://", "unix://")):
        _redis_broker(url, timeout).ping()
        return
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        broker.default_channel  # noqa: B018 - opening a channel proves the broker answers


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


# Not a write: another method is a 405 in the contract's shape, not CSRF's HTML 403.
@csrf_exempt
@never_cache
def healthz(request):
    if request.method != "GET":
        return json_response(
            {"detail": f'Method "{request.method}" not allowed.'},
            status=405,
            headers={"Allow": "GET"},
        )
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure means the dependency is down
            logger.warning("health check %s failed: %s", name, exc.__class__.__name__)
            results[name] = "error"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    if replicas.configured():
        # Reads go to the primary meanwhile: the service still answers.
        results["replica"] = "ok" if replicas.monitor.healthy() else "degraded"
    return json_response(
        {"status": "ok" if healthy else "error", "checks": results},
        status=200 if healthy else 503,
    )
