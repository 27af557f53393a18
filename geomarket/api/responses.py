import json

from django.http import HttpResponse

from geomarket.answer_cache import Answer


def json_bytes(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def cached_json_response(answer: Answer) -> HttpResponse:
    """An already rendered JSON answer, marked with where it came from."""
    response = HttpResponse(answer.body, content_type="application/json")
    response["X-Cache"] = "HIT" if answer.hit else "MISS"
    # Lets the front cache file a copy of this response under the same versions.
    response.answer_versions = answer.versions
    response.answer_expires_at = answer.expires_at
    return response
