"""`GET /`: what this server is, and where to go from here."""

from functools import cache
from pathlib import Path

from django.http import HttpResponse
from django.template import engines
from django.urls import get_script_prefix, reverse
from django.views.decorators.csrf import csrf_exempt

from geomarket.api.views import method_not_allowed


@cache
def _page():
    return engines["django"].from_string(Path(__file__).with_name("home.html").read_text())


# Not a write: another method is a 405 in the contract's shape, not CSRF's HTML 403.
@csrf_exempt
def home(request):
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request, ["GET", "HEAD"])
    prefix = get_script_prefix()
    context = {
        "api": f"{prefix}api/v1/",
        "docs": reverse("docs"),
        "schema": reverse("schema"),
        # The contract's path for the operations console.
        "console": f"{prefix}console/",
        "admin": reverse("admin:index"),
        "health": reverse("healthz"),
    }
    return HttpResponse(_page().render(context, request))
