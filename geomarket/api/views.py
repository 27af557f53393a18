"""JSON answers for errors raised outside DRF views, so no path ever returns an HTML page."""

from django.http import HttpResponse
from rest_framework.exceptions import MethodNotAllowed

from geomarket.api.responses import json_response


def not_found(request, exception=None):
    return json_response({"detail": "Not found."}, status=404)


def bad_request(request, exception=None):
    return json_response({"detail": "Bad request."}, status=400)


def permission_denied(request, exception=None):
    # A refusal that says why (the console's, to a customer) keeps its words.
    detail = str(exception or "") or "You do not have permission to perform this action."
    return json_response({"detail": detail}, status=403)


def csrf_failure(request, reason=""):
    """`CSRF_FAILURE_VIEW`: a form post without its CSRF token (the console's or the
    admin's sign-in) refused in DRF's words, where Django's own answer is an HTML page."""
    return json_response({"detail": f"CSRF Failed: {reason}"}, status=403)


def server_error(request):
    return json_response({"detail": "Internal server error."}, status=500)


def method_not_allowed(request, allowed: list[str]) -> HttpResponse:
    """A view outside DRF refusing `request.method`, in DRF's shape and words."""
    return json_response(
        {"detail": MethodNotAllowed(request.method).detail},
        status=405,
        headers={"Allow": ", ".join(allowed)},
    )
