"""Suggest's limit: atomic in Redis, per client, shared across processes."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from geomarket.ratelimit import RateLimiter
from tests import factories

pytestmark = pytest.mark.django_db

SUGGEST = "/api/v1/search/suggest/"
ROOT = Path(__file__).resolve().parents[2]


def test_twenty_first_request_in_a_minute_is_429(api_client):
    for n in range(20):
        response = api_client.get(SUGGEST, {"q": "tea"})
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "20"
        assert response["X-RateLimit-Remaining"] == str(19 - n)
        assert int(response["X-RateLimit-Reset"]) >= 1
    refused = api_client.get(SUGGEST, {"q": "tea"})
    assert refused.status_code == 429
    body = refused.json()
    assert body["retry_after"] >= 1
    assert refused["Retry-After"] == str(body["retry_after"])
    assert refused["X-RateLimit-Remaining"] == "0"
    assert "detail" in body


def test_bad_requests_count_and_carry_headers(api_client):
    response = api_client.get(SUGGEST, {"q": "ab"})
    assert response.status_code == 400
    assert response["X-RateLimit-Remaining"] == "19"


def test_clients_have_separate_budgets(as_user):
    alice, bob = as_user(factories.user()), as_user(factories.user())
    for _ in range(20):
        assert alice.get(SUGGEST, {"q": "tea"}).status_code == 200
    assert alice.get(SUGGEST, {"q": "tea"}).status_code == 429
    assert bob.get(SUGGEST, {"q": "tea"}).status_code == 200
    anonymous = as_user(None)
    assert anonymous.get(SUGGEST, {"q": "tea"}).status_code == 200


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(api_client, settings):
    for n in range(20):
        api_client.get(SUGGEST, {"q": "tea"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    # spoofed headers do not buy a fresh budget
    assert api_client.get(SUGGEST, {"q": "tea"}, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    behind_proxy = api_client.get(SUGGEST, {"q": "tea"}, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert behind_proxy.status_code == 200
    assert behind_proxy["X-RateLimit-Remaining"] == "19"


def test_limit_is_a_setting(api_client):
    with override_settings(SUGGEST_RATE_LIMIT_PER_MINUTE=3):
        statuses = [api_client.get(SUGGEST, {"q": "tea"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_limit_holds_across_processes(settings):
    """Four processes race for one budget of 20: exactly 20 requests get through."""
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    script = textwrap.dedent(
        f"""
        import os
        os.environ["DJANGO_SETTINGS_MODULE"] = "geomarket.settings.test"
        # The limiter needs the settings and the cache, not the apps: without django.setup()
        # a process starts in a third of the time, and the four start closer together.
        from django.conf import settings
        settings.CACHES["default"]["KEY_PREFIX"] = {prefix!r}
        from geomarket.ratelimit import RateLimiter
        # An hour-long window: no token refills while the processes start up.
        limiter = RateLimiter(scope="race", limit=20, period_seconds=3600)
        print(sum(limiter.hit("ip:198.51.100.1").allowed for _ in range(15)))
        """
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    allowed = [int(worker.communicate(timeout=60)[0].strip()) for worker in workers]
    assert sum(allowed) == 20
    assert (
        not RateLimiter(scope="race", limit=20, period_seconds=3600).hit("ip:198.51.100.1").allowed
    )


def test_limiter_fails_open_when_redis_is_down(api_client, settings, caplog):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    for _ in range(25):
        assert api_client.get(SUGGEST, {"q": "tea"}).status_code == 200
    assert "failing open" in caplog.text


def test_over_the_limit_the_429_comes_first_and_nothing_is_read(
    api_client, django_assert_num_queries
):
    """The check is sent before the handler runs and read after the cache lookup: a
    malformed query still gets the 429, not a 400, and a query whose answer is not cached
    reads nothing from the database."""
    with override_settings(SUGGEST_RATE_LIMIT_PER_MINUTE=1):
        assert api_client.get(SUGGEST, {"q": "tea"}).status_code == 200
        assert api_client.get(SUGGEST, {"q": "ab"}).status_code == 429
        assert api_client.get(SUGGEST, {"q": "tea"}).status_code == 429
        with django_assert_num_queries(0):
            refused = api_client.get(SUGGEST, {"q": "coffee"})
    assert refused.status_code == 429
    assert refused["X-RateLimit-Remaining"] == "0"


def test_head_and_options_requests_count_and_carry_the_headers(api_client):
    with override_settings(SUGGEST_RATE_LIMIT_PER_MINUTE=3):
        answers = [
            api_client.head(SUGGEST, {"q": "tea"}),
            api_client.options(SUGGEST),
            api_client.get(SUGGEST, {"q": "tea"}),
            api_client.head(SUGGEST, {"q": "tea"}),
            api_client.options(SUGGEST),
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert [answer["X-RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0", "0"]
    for answer in answers:
        assert answer["X-RateLimit-Limit"] == "3"
        assert int(answer["X-RateLimit-Reset"]) >= 1
    assert answers[3]["Retry-After"] == answers[4]["Retry-After"]
    assert answers[4].json()["retry_after"] == int(answers[4]["Retry-After"])


@pytest.mark.parametrize(
    "refusal",
    [
        {"HTTP_AUTHORIZATION": "Token not-a-token"},
        {"HTTP_ACCEPT": "text/csv"},
        {"format": "xml"},
    ],
    ids=["token not valid", "Accept nothing renders", "unknown format"],
)
def test_a_request_refused_before_the_view_counts_and_carries_the_headers(api_client, refusal):
    params = {"q": "tea", **{k: v for k, v in refusal.items() if not k.startswith("HTTP_")}}
    meta = {k: v for k, v in refusal.items() if k.startswith("HTTP_")}
    with override_settings(SUGGEST_RATE_LIMIT_PER_MINUTE=2):
        first = api_client.get(SUGGEST, params, **meta)
        assert api_client.get(SUGGEST, {"q": "tea"}).status_code == 200
        # Over the limit, who is asking is still settled first: the refusal stands.
        again = api_client.get(SUGGEST, params, **meta)
        assert api_client.get(SUGGEST, {"q": "tea"}).status_code == 429
    assert first.status_code == again.status_code
    assert first.status_code in (401, 404, 406)
    assert [first["X-RateLimit-Remaining"], again["X-RateLimit-Remaining"]] == ["1", "0"]
    assert first["X-RateLimit-Limit"] == "2"


def test_the_schema_says_every_answer_carries_the_headers(client):
    schema = client.get("/api/schema/?format=json").json()
    responses = schema["paths"][SUGGEST]["get"]["responses"]
    limit_headers = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert {"200", "400", "406", "429"} <= set(responses)
    for status, response in responses.items():
        expected = limit_headers | ({"Retry-After"} if status == "429" else set())
        assert set(response.get("headers", {})) == expected, status
        assert all(header["required"] for header in response["headers"].values())
    search = schema["paths"]["/api/v1/search/products/"]["get"]["responses"]
    assert not any("headers" in response for response in search.values())
