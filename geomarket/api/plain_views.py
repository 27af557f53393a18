"""DRF's authentication and error answers for plain Django views.

An async view cannot be an `APIView` (DRF dispatches synchronously), yet it must answer
as one does: its caller authenticated by the configured authentication classes, and its
errors (a refused token, a database outage) answered by the one exception handler and
rendered as DRF renders them, `WWW-Authenticate` included. `api_call` gives it that
through DRF's own `APIView` machinery, in the thread hop its database work takes anyway.
"""

from collections.abc import Callable
from typing import TypeVar

from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.views import APIView

T = TypeVar("T")


def api_call(
    request: HttpRequest,
    work: Callable[[Request], T],
    *,
    allowed_methods: tuple[str, ...] = (),
) -> T | HttpResponseBase:
    """What `work` returns for the request as DRF's views see it, authenticated first;
    or, when authenticating or `work` raised, the response an `APIView` gives for it.

    Only authentication runs, not the default permission classes: the plain view
    decides itself who may do what. It uses the database: call it in a thread.
    `allowed_methods` are announced in `Allow`, as an APIView announces its handlers.
    """
    view = APIView()
    view.setup(request)
    view.format_kwarg = None
    # An APIView's dispatch adds `Allow` for the methods it has handlers for.
    view.headers = {"Allow": ", ".join(allowed_methods)} if allowed_methods else {}
    view.request = api_request = view.initialize_request(request)
    try:
        # Eagerly, as `APIView.initial` does: an invalid token is refused whatever the
        # view goes on to need.
        api_request.user  # noqa: B018
        return work(api_request)
    except Exception as exc:
        return view.finalize_response(api_request, view.handle_exception(exc))
