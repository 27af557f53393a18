"""Helpers for tests that call the served ASGI application, as uvicorn does."""

import httpx
from asgiref.sync import sync_to_async
from django.db import connections

from bench.common.processes import free_port
from catalog.services import product_update
from geomarket.asgi import application


def served() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://localhost"
    )


def reprice(product, price) -> None:
    try:
        product_update(product=product, data={"price": price})
    finally:
        # This runs on the request threads' executor, outside any request: give the
        # connection back, or it would outlive the test database.
        connections.close_all()


# The route tests' name for it: a port with nothing listening.
closed_port = free_port


async def in_thread(function, *args, **kwargs):
    """`function` run from an async test, giving its thread's connection back after."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await sync_to_async(run)()
