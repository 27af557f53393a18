"""A miss's cache writes (the answer cache's entry, the front cache's copy) are made after
its answer has gone out, in one round trip, each kept no longer than it would have been."""

import time
from urllib.parse import urlencode

import pytest
from django_redis import get_redis_connection
from redis.client import Pipeline

from geomarket import answer_cache
from geomarket.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

NEARBY = "/api/v1/products/nearby/"


@pytest.fixture(autouse=True)
def misses_go_to_django(settings):
    settings.NEARBY_ROUTE = False


def _scope(path: str, query: dict) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query).encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }


async def _receive():
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_miss_is_sent_before_its_writes_which_take_one_round_trip(near, monkeypatch):
    events = []
    executed = []
    execute = Pipeline.execute

    def recording_execute(pipe, *args, **kwargs):
        executed.append([command[0][0] for command in pipe.command_stack])
        events.append("written")
        return execute(pipe, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", recording_execute)

    async def send(message):
        if message["type"] == "http.response.body" and not message.get("more_body"):
            events.append("sent")

    await application(_scope(NEARBY, near), _receive, send)

    # The lookup's pipeline (versions and entry) came before the answer; the writes after.
    assert events[-2:] == ["sent", "written"]
    assert executed[-1] == ["SET", "SET"]
    client = get_redis_connection("default")
    answers = client.keys(f"{answer_cache.answer_prefix()}:*")
    assert any(b":version:" not in key for key in answers)


async def test_the_written_copies_answer_the_next_request(near):
    sent = []

    async def send(message):
        sent.append(message)

    await application(_scope(NEARBY, near), _receive, send)
    await application(_scope(NEARBY, near), _receive, send)
    starts = [m["headers"] for m in sent if m["type"] == "http.response.start"]
    cache = [value for headers in starts for name, value in headers if name.lower() == b"x-cache"]
    assert cache == [b"MISS", b"HIT"]


def test_a_write_outside_a_held_request_is_made_at_once():
    key = f"{answer_cache.answer_prefix()}:test:at-once"
    answer_cache.cache_write(key, b"entry", until=time.time() + 5, action="test write")
    client = get_redis_connection("default")
    assert client.get(key) == b"entry"
    assert 0 < client.pttl(key) <= 5000


def test_a_held_write_is_kept_only_for_what_is_left_of_its_time():
    client = get_redis_connection("default")
    late = f"{answer_cache.answer_prefix()}:test:late"
    expired = f"{answer_cache.answer_prefix()}:test:expired"
    with answer_cache.writes_held() as held:
        answer_cache.cache_write(late, b"late", until=time.time() + 1.0, action="test write")
        answer_cache.cache_write(expired, b"gone", until=time.time() + 0.05, action="test write")
        assert client.get(late) is None
    time.sleep(0.3)
    answer_cache.write_held(held)
    assert client.get(expired) is None
    assert 0 < client.pttl(late) <= 700
