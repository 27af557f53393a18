import json

from django.http import HttpResponse

from geomarket.answer_cache import Answer


def json_bytes(data) -> bytes:
    """`data` as DRF's `JSONRenderer` renders it (compact, UTF-8)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(data, *, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """A JSON answer from outside DRF (a plain view, a middleware), rendered as DRF's are,
    not as Django's `JsonResponse` (spaces after separators, non-ASCII escaped)."""
    return HttpResponse(
        json_bytes(data), status=status, content_type="application/json", headers=headers
    )


def cached_json_response(answer: Answer) -> HttpResponse:
    """An already rendered JSON answer, marked with where it came from."""
    response = HttpResponse(answer.body, content_type="application/json")
    response["X-Cache"] = "HIT" if answer.hit else "MISS"
    # Lets the front cache file a copy of this response under the same versions.
    response.answer_versions = answer.versions
    response.answer_expires_at = answer.expires_at
    return response
