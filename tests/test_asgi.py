"""The served ASGI application: one thread hop per request, async views still async."""

import threading

import httpx
import pytest
from asgiref.sync import iscoroutinefunction
from django.core import signals

from geomarket.asgi import SingleHopASGIHandler, application

pytestmark = pytest.mark.django_db(transaction=True)


async def test_asgi_application_serves_api_docs_and_static_files():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        categories = await client.get("/api/v1/categories/")
        assert categories.status_code == 200
        assert categories.json()["results"] == []
        missing = await client.get("/api/v1/nope/")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Not found."}
        bundle = await client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        )
        assert bundle.status_code == 200


def test_middleware_chain_is_built_in_sync_mode():
    handler = application.application
    assert isinstance(handler, SingleHopASGIHandler)
    # A sync chain: the request crosses into a worker thread once, not once per middleware.
    assert not iscoroutinefunction(handler._middleware_chain)


async def test_requests_reuse_the_loops_worker_threads():
    """No thread per request: a fresh thread rebuilds every thread-local handle."""
    serving_threads = []

    def record(**kwargs):
        # The Thread objects themselves: an OS thread id is reused once its thread ends.
        serving_threads.append(threading.current_thread())

    signals.request_started.connect(record)
    try:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for _ in range(40):
                assert (await client.get("/api/v1/categories/")).status_code == 200
    finally:
        signals.request_started.disconnect(record)
    # The loop's executor holds at most 32 threads, so 40 requests must share them; a
    # thread of its own per request would make 40.
    assert len(set(serving_threads)) <= 32
    assert threading.current_thread() not in serving_threads
