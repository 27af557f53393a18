"""The lean pipelined Redis connection the front cache uses, against the real Redis."""

import asyncio
import uuid

import pytest
from django.conf import settings
from django_redis import get_redis_connection
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from geomarket.lane.redis_async import RedisPipe


def redis_url(db: int | None = None) -> str:
    url = settings.CACHES["default"]["LOCATION"]
    return url if db is None else url.rsplit("/", 1)[0] + f"/{db}"


def pipe(url: str | None = None, *, timeout: float = 1.0) -> RedisPipe:
    return RedisPipe(url or redis_url(), timeout=timeout, connect_timeout=1.0)


async def test_concurrent_commands_each_get_their_own_reply():
    link = pipe()
    prefix = f"pipe-test:{uuid.uuid4().hex}"

    async def round_trip(number: int):
        key = f"{prefix}:{number}"
        assert await link.execute("SET", key, f"value {number}", "EX", 60) == b"OK"
        return await link.execute("MGET", key, f"{prefix}:missing")

    replies = await asyncio.gather(*(round_trip(number) for number in range(300)))
    assert replies == [[f"value {number}".encode(), None] for number in range(300)]
    link.close()


async def test_an_error_reply_raises_and_the_connection_goes_on():
    link = pipe()
    key = f"pipe-test:{uuid.uuid4().hex}"
    await link.execute("SET", key, "not a number", "EX", 60)
    with pytest.raises(ResponseError):
        await link.execute("INCR", key)
    assert await link.execute("GET", key) == b"not a number"
    link.close()


async def test_the_database_in_the_url_is_selected():
    database = parse_url(redis_url()).get("db", 0) or 0
    other = 1 if database != 1 else 2
    link = pipe(redis_url(other))
    key = f"pipe-test:{uuid.uuid4().hex}"
    await link.execute("SET", key, "here", "EX", 60)
    link.close()
    default = get_redis_connection("default")
    assert default.get(key) is None
    client = default.__class__.from_url(redis_url(other))
    assert client.get(key) == b"here"
    client.delete(key)


async def test_a_refused_connection_is_a_redis_connection_error():
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(RedisConnectionError):
        await pipe(f"redis://127.0.0.1:{port}/0").execute("GET", "x")


async def test_a_silent_server_times_out_and_the_next_command_reconnects():
    connections = []

    async def silent(reader, writer):
        connections.append(writer)
        await reader.read(1 << 16)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = pipe(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    waiting = [asyncio.ensure_future(link.execute("GET", f"k{n}")) for n in range(3)]
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, RedisTimeoutError | RedisConnectionError)
    with pytest.raises(RedisTimeoutError):
        await link.execute("GET", "again")
    assert len(connections) == 2
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_commands_in_flight_fail_when_the_server_hangs_up():
    async def hang_up(reader, writer):
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = pipe(f"redis://127.0.0.1:{port}/0", timeout=5)
    with pytest.raises(RedisConnectionError):
        await link.execute("GET", "x")
    server.close()
    await server.wait_closed()
