"""The OpenAPI document's view. Apart from `geomarket.api.schema`, which DRF's settings
import while drf-spectacular's views are still loading."""

import threading
from typing import ClassVar

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView


class SchemaView(SpectacularAPIView):
    """The OpenAPI document, built once per process and format.

    It depends on the code and the settings only, yet drf-spectacular builds it anew for
    each request: most of a second of CPU, during which the worker serves no one else.
    Requests naming a `lang` or `version` are built as before, so that no query string can
    grow the memo. One thread builds at a time: drf-spectacular loads its extensions on
    first use without a lock, and threads building together failed with a 500."""

    _rendered: ClassVar[dict[str, tuple[bytes, dict[str, str]]]] = {}
    _building: ClassVar[threading.Lock] = threading.Lock()

    def dispatch(self, request, *args, **kwargs):
        with self._building:
            return super().dispatch(request, *args, **kwargs)

    @extend_schema(**SCHEMA_KWARGS)
    def get(self, request, *args, **kwargs):
        key = None if request.GET.keys() & {"lang", "version"} else request.accepted_media_type
        if key in self._rendered:
            content, headers = self._rendered[key]
            return HttpResponse(content, headers=headers)
        response = super().get(request, *args, **kwargs)
        response.schema_memo_key = key
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        key = getattr(response, "schema_memo_key", None)
        if key is not None and response.status_code == 200:
            response.render()
            self._rendered[key] = (response.content, dict(response.headers))
        return response
