from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import JsonResponse


class RequestBodyLimitMiddleware:
    """Refuse bodies over `REQUEST_BODY_MAX_BYTES` with 413 before anything reads them.

    DRF parsers read the request stream directly, so Django's own
    `DATA_UPLOAD_MAX_MEMORY_SIZE` check on `request.body` never runs for API views.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = settings.REQUEST_BODY_MAX_BYTES
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _too_large(self, request) -> JsonResponse | None:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse({"detail": "Malformed Content-Length header."}, status=400)
        if length > self.limit:
            return JsonResponse(
                {"detail": f"Request body exceeds the limit of {self.limit} bytes."}, status=413
            )
        return None

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._too_large(request) or self.get_response(request)

    async def _acall(self, request):
        return self._too_large(request) or await self.get_response(request)
