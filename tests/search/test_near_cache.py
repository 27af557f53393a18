"""Each server process's copy of front-cache entries: answers without asking Redis, and
is never staler than Redis, because Redis tells it about every version change."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django_redis import get_redis_connection

from geomarket import answer_cache
from geomarket.lane import near_cache
from tests.redis_server import RedisServer
from tests.search.served import reprice, served

pytestmark = pytest.mark.django_db(transaction=True)

NEARBY = "/api/v1/products/nearby/"


@pytest.fixture(autouse=True)
def misses_go_to_django(settings):
    # The copy holds Django's answers and the nearby route's alike; Django's are simpler
    # to count.
    settings.NEARBY_ROUTE = False


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis server of the test's own, for a test that flushes Redis or cuts the copy's
    link: on the shared server that would wipe the keys of every other process using it
    and empty their copies, breaking a test that counts on a hit beside it."""
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    yield server
    server.stop()


async def linked_copy(copy: near_cache.NearCache | None = None) -> near_cache.NearCache:
    copy = copy or near_cache.copies.get()
    deadline = time.monotonic() + 3
    while not copy.trusted():
        assert time.monotonic() < deadline, "the near cache never linked to Redis"
        await asyncio.sleep(0.01)
    return copy


def drop_redis_entries() -> int:
    """Delete every front-cache entry in Redis (not a version key: no message is sent)."""
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(f"{answer_cache.answer_prefix()}:front:*"))
    return redis.delete(*keys) if keys else 0


def tracking_client_ids() -> list[str]:
    clients = get_redis_connection("default").client_list()
    return [client["id"] for client in clients if "t" in client["flags"]]


async def test_a_hit_is_answered_from_the_process_copy_without_redis(near, django_entries):
    await linked_copy()
    async with served() as client:
        first = await client.get(NEARBY, params=near)
        second = await client.get(NEARBY, params=near)
        assert drop_redis_entries() == 1
        third = await client.get(NEARBY, params=near)
    assert [r.headers["x-cache"] for r in (first, second, third)] == ["MISS", "HIT", "HIT"]
    assert third.content == first.content
    assert third.headers["content-length"] == str(len(first.content))
    assert third.headers["x-content-type-options"] == first.headers["x-content-type-options"]
    assert len(django_entries) == 1


async def test_a_committed_write_reaches_the_copy_before_the_next_request(
    shop, near, django_entries
):
    await linked_copy()
    async with served() as client:
        await client.get(NEARBY, params=near)
        await client.get(NEARBY, params=near)
        drop_redis_entries()
        assert (await client.get(NEARBY, params=near)).headers["x-cache"] == "HIT"
        # The write's version bump goes through its own Redis connection, as another
        # process's would; the next request follows it at once.
        await sync_to_async(reprice)(shop["item"], "2.40")
        after = await client.get(NEARBY, params=near)
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["results"][0]["product"]["price"] == "2.40"
    assert len(django_entries) == 2


async def test_a_flush_of_redis_empties_the_copy(own_redis, near, django_entries):
    await linked_copy()
    async with served() as client:
        await client.get(NEARBY, params=near)
        await client.get(NEARBY, params=near)
        get_redis_connection("default").flushdb()
        after = await client.get(NEARBY, params=near)
    assert after.headers["x-cache"] == "MISS"
    assert len(django_entries) == 2


async def test_a_lost_tracking_connection_empties_the_copy_until_it_links_again(
    own_redis, near, django_entries
):
    copy = await linked_copy()
    async with served() as client:
        await client.get(NEARBY, params=near)
        await client.get(NEARBY, params=near)
        assert len(django_entries) == 1
        ids = tracking_client_ids()
        assert ids
        for client_id in ids:
            get_redis_connection("default").execute_command("CLIENT", "KILL", "ID", client_id)
        drop_redis_entries()
        # Messages sent while it was gone are lost: the copy must not answer, so the
        # request reaches Django.
        await client.get(NEARBY, params=near)
        assert len(django_entries) == 2
        await linked_copy(copy)
        await client.get(NEARBY, params=near)
        drop_redis_entries()
        relinked = await client.get(NEARBY, params=near)
    assert relinked.headers["x-cache"] == "HIT"
    assert len(django_entries) == 2


class SilencingProxy:
    """A TCP proxy to Redis that can stop passing bytes on, like a hung server."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.silent = False
        self.server = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        await asyncio.gather(
            self._pump(reader, upstream_writer), self._pump(upstream_reader, writer)
        )

    async def _pump(self, reader, writer):
        while data := await reader.read(65536):
            if not self.silent:
                writer.write(data)
        writer.close()

    def close(self):
        self.server.close()


async def test_a_silent_link_stops_the_copy_within_two_heartbeats():
    from redis.connection import parse_url

    target = parse_url(settings.CACHES["default"]["LOCATION"])
    proxy = SilencingProxy(target.get("port", 6379))
    port = await proxy.start()
    copy = near_cache.NearCache(
        url=f"redis://127.0.0.1:{port}/{target.get('db', 0)}",
        version_prefix=answer_cache.version_key(""),
        max_bytes=1 << 20,
        heartbeat=0.1,
    )
    await linked_copy(copy)
    copy.keep_versions({"catalog": "1"}, generation=copy.generation)
    copy.keep("k", versions={"catalog": "1"}, expires_at=time.time() + 60, answer=(200, [], b"x"))
    assert await copy.answer("k") == (200, [], b"x")
    proxy.silent = True
    await asyncio.sleep(0.3)
    assert await copy.answer("k") is None
    copy.close()
    proxy.close()


async def test_versions_read_across_an_invalidation_are_not_kept(db):
    copy = await linked_copy()
    generation = copy.generation
    get_redis_connection("default").incr(answer_cache.version_key("catalog"))
    deadline = time.monotonic() + 2
    while copy.generation == generation:
        assert time.monotonic() < deadline, "no invalidation message arrived"
        await asyncio.sleep(0.01)
    copy.keep_versions({"catalog": "0", "merchants": "0"}, generation=generation)
    assert copy.versions is None
    copy.keep_versions({"catalog": "1", "merchants": "0"}, generation=copy.generation)
    assert copy.versions == {"catalog": "1", "merchants": "0"}


async def test_an_expired_or_outdated_entry_is_not_served(db):
    copy = await linked_copy()
    copy.keep_versions({"catalog": "3"}, generation=copy.generation)
    copy.keep("old", versions={"catalog": "2"}, expires_at=time.time() + 60, answer=(200, [], b"a"))
    copy.keep("gone", versions={"catalog": "3"}, expires_at=time.time() - 1, answer=(200, [], b"b"))
    copy.keep("ok", versions={"catalog": "3"}, expires_at=time.time() + 60, answer=(200, [], b"c"))
    assert await copy.answer("old") is None
    assert await copy.answer("gone") is None
    assert await copy.answer("ok") == (200, [], b"c")


async def test_the_copy_keeps_to_its_byte_budget_dropping_the_least_recently_used(db):
    copy = await linked_copy(
        near_cache.NearCache(
            url=settings.CACHES["default"]["LOCATION"],
            version_prefix=answer_cache.version_key(""),
            max_bytes=8 * 1000,
            heartbeat=0.5,
        )
    )
    copy.keep_versions({"catalog": "1"}, generation=copy.generation)
    expires_at = time.time() + 60
    # Nine entries of 902 bytes: one must go.
    for number in range(9):
        body = bytes(900)
        copy.keep(
            f"k{number}", versions={"catalog": "1"}, expires_at=expires_at, answer=(200, [], body)
        )
        if number == 1:
            assert await copy.answer("k0") is not None  # k0 is now more recent than k1
    kept = [number for number in range(9) if await copy.answer(f"k{number}") is not None]
    assert kept == [0, 2, 3, 4, 5, 6, 7, 8]
    # An answer bigger than an eighth of the budget is never kept.
    copy.keep(
        "big", versions={"catalog": "1"}, expires_at=expires_at, answer=(200, [], bytes(1001))
    )
    assert await copy.answer("big") is None
    copy.close()
