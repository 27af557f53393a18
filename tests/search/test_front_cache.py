"""The front cache: repeated anonymous search answers served by the ASGI server itself,
never stale, never in place of an answer Django would give differently."""

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django_redis import get_redis_connection

from geomarket.lane import front_cache
from tests.search.served import closed_port, reprice, served

pytestmark = pytest.mark.django_db(transaction=True)

NEARBY = "/api/v1/products/nearby/"
DELIVERING_TO = "/api/v1/merchants/delivering-to/"
SEARCH = "/api/v1/search/products/"
SUGGEST = "/api/v1/search/suggest/"


@pytest.fixture(autouse=True)
def misses_go_to_django(settings):
    """These tests are about copies of Django's answers: the nearby route, which answers
    misses itself, is tested in test_nearby_route."""
    settings.NEARBY_ROUTE = False


async def test_a_repeated_anonymous_query_is_answered_without_django(near, django_entries):
    async with served() as client:
        first = await client.get(NEARBY, params=near)
        second = await client.get(NEARBY, params=near)
    assert first.status_code == second.status_code == 200
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert len(django_entries) == 1
    assert second.content == first.content
    assert second.json()["results"][0]["product"]["title"] == "Oat Milk"
    # The security headers Django's middleware set travel with the copy.
    for name in ("content-type", "x-content-type-options", "referrer-policy", "x-frame-options"):
        assert second.headers[name] == first.headers[name]
    assert int(second.headers["content-length"]) == len(second.content)


@pytest.mark.parametrize("path", [NEARBY, DELIVERING_TO, SEARCH])
async def test_every_listed_search_answer_is_served_in_front(path, near, django_entries):
    params = {"q": "milk"} if path == SEARCH else near
    async with served() as client:
        answers = [await client.get(path, params=params) for _ in range(3)]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "HIT", "HIT"]
    assert len(django_entries) == 1


async def test_a_committed_write_makes_the_copy_unreachable(shop, near, django_entries):
    async with served() as client:
        await client.get(NEARBY, params=near)
        assert (await client.get(NEARBY, params=near)).headers["x-cache"] == "HIT"
        await sync_to_async(reprice)(shop["item"], "2.40")
        after = await client.get(NEARBY, params=near)
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["results"][0]["product"]["price"] == "2.40"
    assert len(django_entries) == 2


async def test_a_request_with_credentials_is_left_to_django(near, django_entries):
    async with served() as client:
        await client.get(NEARBY, params=near)
        forged = await client.get(NEARBY, params=near, headers={"Authorization": "Token forged"})
        with_cookie = await client.get(NEARBY, params=near, headers={"Cookie": "sessionid=x"})
    assert forged.status_code == 401
    assert with_cookie.status_code == 200
    assert len(django_entries) == 3


async def test_each_host_scheme_and_format_has_its_own_copy(near, django_entries):
    async with served() as client:
        await client.get(NEARBY, params=near)
        other_host = await client.get(NEARBY, params=near, headers={"Host": "evil.example"})
        proxied = await client.get(NEARBY, params=near, headers={"X-Forwarded-Proto": "https"})
        other_accept = await client.get(NEARBY, params=near, headers={"Accept": "application/json"})
        proxied_again = await client.get(
            NEARBY, params=near, headers={"X-Forwarded-Proto": "https"}
        )
    # Django, not a copy made for another host, turns the unknown host away.
    assert other_host.status_code == 400
    assert proxied.status_code == other_accept.status_code == 200
    assert len(django_entries) == 4
    assert proxied_again.headers["x-cache"] == "HIT"


async def test_rate_limited_suggest_always_reaches_django(django_entries):
    async with served() as client:
        answers = [await client.get(SUGGEST, params={"q": "oat"}) for _ in range(3)]
    assert [int(answer.headers["x-ratelimit-remaining"]) for answer in answers] == [19, 18, 17]
    assert len(django_entries) == 3


async def test_without_redis_the_database_answers(near, settings, django_entries):
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    async with served() as client:
        answers = [await client.get(NEARBY, params=near) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert [answer.headers["x-cache"] for answer in answers] == ["MISS", "MISS"]
    assert answers[0].json()["results"][0]["product"]["title"] == "Oat Milk"
    assert len(django_entries) == 2


def test_a_response_that_sets_a_cookie_is_never_copied():
    scope = {
        "type": "http",
        "method": "GET",
        "path": NEARBY,
        "raw_path": NEARBY.encode(),
        "query_string": b"lat=1&lng=2",
        "headers": [(b"host", b"localhost")],
    }
    response = HttpResponse(b"{}", content_type="application/json")
    response.answer_versions = {"catalog": "0", "merchants": "0"}
    response.set_cookie("sessionid", "secret")
    front_cache.store(scope, response)
    assert get_redis_connection("default").get(front_cache.front_key(scope)) is None
    del response.cookies["sessionid"]
    front_cache.store(scope, response)
    assert get_redis_connection("default").get(front_cache.front_key(scope)) is not None
