from functools import cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse


@cache
def _icon() -> bytes:
    return Path(finders.find("maps/favicon.svg")).read_bytes()


def favicon(request):
    """`/favicon.ico`, which browsers ask for on every page, admin and console included:
    without it each page logs a 404 in the browser's console."""
    response = HttpResponse(_icon(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
