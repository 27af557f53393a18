"""The event-loop lane refuses to start with a route it cannot place or a middleware it
would bypass."""

import os
import subprocess
import sys

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from geomarket.asgi import SingleHopASGIHandler
from geomarket.lane.checks import TAG
from geomarket.lane.routes import routes_by_path


def lane_errors() -> list[str]:
    return [error.id for error in checks.run_checks(tags=[TAG])]


def test_the_project_settings_pass():
    assert lane_errors() == []


def test_routes_are_found_by_the_path_of_their_url_name():
    routes = routes_by_path()

    assert {path: route.url_name for path, route in routes.items()} == {
        "/api/v1/products/nearby/": "products-nearby",
        "/api/v1/search/products/": "search-products",
        "/api/v1/merchants/nearby/": "merchants-nearby",
        "/api/v1/merchants/delivering-to/": "merchants-delivering-to",
        "/api/v1/analytics/revenue/": "analytics-revenue",
        "/api/v1/analytics/top-products/": "analytics-top-products",
        "/api/v1/couriers/me/location/": "courier-location",
    }


@pytest.mark.parametrize(
    "middleware",
    # Each answers by a request header the lane does not key on.
    ["django.middleware.gzip.GZipMiddleware", "django.middleware.locale.LocaleMiddleware"],
)
def test_a_middleware_the_lane_would_bypass_stops_start_up(settings, middleware):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, middleware]

    assert lane_errors() == ["lane.E003"]
    with pytest.raises(SystemCheckError, match=middleware):
        SingleHopASGIHandler()
    # Django's own commands (migrate, runserver, check) refuse too.
    with pytest.raises(SystemCheckError, match=r"lane\.E003"):
        call_command("check")


def test_a_route_naming_no_url_stops_start_up(settings):
    settings.FAST_ROUTES = [*settings.FAST_ROUTES, "tests.misnamed_route"]

    assert lane_errors() == ["lane.E002"]
    with pytest.raises(SystemCheckError, match="products-nearby-typo"):
        SingleHopASGIHandler()


def test_a_view_with_two_routes_stops_start_up(settings):
    settings.FAST_ROUTES = [*settings.FAST_ROUTES, "catalog.nearby_route"]

    assert lane_errors() == ["lane.E005"]


def test_a_listed_module_without_routes_stops_start_up(settings):
    settings.FAST_ROUTES = [*settings.FAST_ROUTES, "catalog.selectors", "catalog.no_such_module"]

    assert lane_errors() == ["lane.E001", "lane.E001"]


def test_refusing_user_agents_stops_start_up(settings):
    # CommonMiddleware would refuse them by a header the lane does not read.
    settings.DISALLOWED_USER_AGENTS = [r"^BadBot"]

    assert lane_errors() == ["lane.E004"]


def test_django_checks_the_lane_without_the_asgi_server():
    # In a process of its own: this one has imported `geomarket.asgi`, which would have
    # registered the checks by itself.
    script = (
        "import django; django.setup(); "
        "from django.conf import settings; from django.core.management import call_command; "
        "settings.MIDDLEWARE.append('django.middleware.gzip.GZipMiddleware'); "
        "call_command('check')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "geomarket.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )

    assert result.returncode != 0
    assert "lane.E003" in result.stderr
