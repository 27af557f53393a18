import json

from django.http import HttpResponse


def json_bytes(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def cached_json_response(body: bytes, *, hit: bool) -> HttpResponse:
    """An already rendered JSON answer, marked with where it came from."""
    response = HttpResponse(body, content_type="application/json")
    response["X-Cache"] = "HIT" if hit else "MISS"
    return response
