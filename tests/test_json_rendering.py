"""JSON answered outside DRF (the health check, the error handlers, the body limit) is
rendered as DRF renders the API's answers: compact, UTF-8."""

import pytest

from geomarket.api.responses import json_bytes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/healthz", 200),
        ("post", "/healthz", 405),
        ("get", "/no-such-page/", 404),
    ],
)
def test_answers_outside_drf_are_compact(client, method, path, status):
    answer = getattr(client, method)(path)
    assert answer.status_code == status
    assert answer["Content-Type"] == "application/json"
    assert answer.content == json_bytes(answer.json())


def test_a_body_over_the_limit_is_answered_compact(client, settings):
    settings.REQUEST_BODY_MAX_BYTES = 10
    answer = client.post("/api/v1/auth/token/", "x" * 100, content_type="application/json")
    assert answer.status_code == 413
    assert answer.content == json_bytes(answer.json())
