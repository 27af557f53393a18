from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpResponse

from geomarket.api.responses import json_response


def body_too_large() -> HttpResponse:
    """The answer to a request body over `REQUEST_BODY_MAX_BYTES`, declared or received."""
    limit = settings.REQUEST_BODY_MAX_BYTES
    detail = f"Request body exceeds the limit of {limit} bytes."
    return json_response({"detail": detail}, status=413)


def declared_length_refusal(raw: str | bytes | None) -> HttpResponse | None:
    """The answer to a request whose `Content-Length` is malformed or over the limit, or
    None when the declared length (if any) is acceptable."""
    if not raw:
        return None
    # HTTP allows ASCII digits only; int() would also take "١٢", " 12" or "1_2".
    if not (raw.isascii() and raw.isdigit()):
        return json_response({"detail": "Malformed Content-Length header."}, status=400)
    if int(raw) > settings.REQUEST_BODY_MAX_BYTES:
        return body_too_large()
    return None


class RequestBodyLimitMiddleware:
    """Refuse a declared body over `REQUEST_BODY_MAX_BYTES` with 413 before anything reads it.

    DRF parsers read the request stream directly, so Django's own
    `DATA_UPLOAD_MAX_MEMORY_SIZE` check on `request.body` never runs for API views. The
    served ASGI application (`geomarket.asgi.RequestBodyLimit`) applies the same rule
    before Django, and caps chunked bodies as they arrive; this middleware holds it for
    every other way into Django: the test client, a WSGI server.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        refusal = declared_length_refusal(request.META.get("CONTENT_LENGTH"))
        return refusal or self.get_response(request)

    async def _acall(self, request):
        refusal = declared_length_refusal(request.META.get("CONTENT_LENGTH"))
        return refusal or await self.get_response(request)
