"""The whole-API bench scenario measures every GET route of the URL conf: each has a case,
written or automatic, and a route neither can measure is named, not skipped in silence."""

import os
import random
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from bench.scenarios import api


def test_every_get_route_of_the_url_conf_has_a_case():
    routes = api.get_routes()
    cases, uncovered = api.plan(routes)

    assert uncovered == [], (
        "GET routes with no case in bench/scenarios/api.py and path parameters no pool"
        f" fills: {[route.pattern for route in uncovered]}"
    )
    measured = {case.route for case in cases}
    assert measured | set(api.MEASURED_ELSEWHERE) == {route.name for route in routes}
    # A stream never ends: a request of the whole-API loop would wait for good.
    assert not measured & set(api.MEASURED_ELSEWHERE)
    # No case for a route that is gone.
    assert {case.route for case in api.CASES} <= {route.name for route in routes}
    assert all(case.role in api.ROLES for case in api.CASES)


def test_the_routes_are_the_gets_and_not_the_admin():
    names = {route.name for route in api.get_routes()}

    assert {"home", "healthz", "schema", "merchant-detail", "order-list", "products-nearby"} <= (
        names
    )
    # POST only: a class without `get`, and a function view.
    assert not {"order-status", "priority-assignment", "delivery-eta"} & names
    assert not [route for route in api.get_routes() if route.pattern.startswith("/admin/")]


@pytest.mark.parametrize("name", sorted(api.NO_GET_FUNCTION_VIEWS))
def test_a_function_view_left_out_answers_no_get(name):
    assert Client(HTTP_HOST="127.0.0.1").get(reverse(name)).status_code == 405


def _city(**overrides) -> api.City:
    pools = {
        "name": "demo",
        "headers": {role: {} for role in api.ROLES},
        "owner_merchant": 7,
        "owner_zones": [70],
        "owner_products": [700],
        "owner_inventory": [7000],
        "customer_orders": [9],
        "courier_id": 3,
        "merchants": [1, 2],
        "products": [10],
        "categories": [5],
        "couriers": [3],
        "waiting_orders": [9],
        "owner_webhooks": [11],
        "points": [(52.5, 13.4)],
        "prefixes": ["bre"],
    }
    return api.City(**{**pools, **overrides})


def test_a_new_route_gets_an_automatic_case_or_is_named_as_not_covered():
    detail = api.Route("merchant-detail", "/api/v1/merchants/<int:merchant_id>/")
    tiles = api.Route("tiles", "/tiles/<str:layer>/<int:z>/<int:x>/<int:y>.mvt")

    case = api.auto_case(detail)
    assert case.auto
    assert case.role is None
    assert case.make(_city(), random.Random(1)) == "/api/v1/merchants/7/"
    assert api.auto_case(tiles) is None
    cases, uncovered = api.plan([tiles])
    assert cases == []
    assert uncovered == [tiles]


CONTRACT = """
| GET `/api/v1/auth/me/` | authenticated | me |
| POST `/api/v1/auth/token/` | anyone | token |
| GET/PUT/PATCH/DELETE `/api/v1/merchants/{id}/` | read: anyone | merchant |
| GET/POST `/api/v1/categories/`, GET/PUT/PATCH/DELETE `/api/v1/categories/{id}/` | read | x |
| PUT/GET `/api/v1/merchants/{id}/slot-plan/` | owner | plan |
| GET `/api/v1/products/nearby/?lat&lng&radius` | anyone | nearby |
| GET `/healthz` | anyone | health |
| GET `/tiles/{layer}/{z}/{x}/{y}.mvt` | anyone | tiles |
"""


def test_the_contract_gets_and_those_no_route_serves_yet():
    assert api.contract_gets(CONTRACT) == [
        "/api/v1/auth/me/",
        "/api/v1/merchants/{}/",
        "/api/v1/categories/",
        "/api/v1/categories/{}/",
        "/api/v1/merchants/{}/slot-plan/",
        "/api/v1/products/nearby/",
        "/healthz",
        "/tiles/{}/{}/{}/{}.mvt",
    ]
    routes = [
        api.Route("me", "/api/v1/auth/me/"),
        api.Route("merchant", "/api/v1/merchants/<int:merchant_id>/"),
        api.Route("categories", "/api/v1/categories/"),
        api.Route("category", "/api/v1/categories/<int:category_id>/"),
        api.Route("nearby", "/api/v1/products/nearby/"),
        api.Route("healthz", "/healthz"),
    ]
    assert api.not_served(routes, CONTRACT) == [
        "/api/v1/merchants/{}/slot-plan/",
        "/tiles/{}/{}/{}/{}.mvt",
    ]
    assert api.not_served(routes, None) == []


def _row(city: str, role: str, api_p50: float, sql_p50: float) -> api.Row:
    return api.Row(
        city=city,
        route="r",
        role=role,
        auto=False,
        samples=50,
        statements=1.0,
        api_p50=api_p50,
        api_p95=api_p50,
        sql_p50=sql_p50,
        rps8=None,
        hit_ratio8=None,
        errors=0,
        example=[],
    )


def test_the_targets_hold_on_the_bench_city_public_2_ms_authenticated_4_ms():
    assert _row("bench", api.ANONYMOUS, 3.0, 1.0).verdict == "PASS"
    assert _row("bench", api.ANONYMOUS, 3.1, 1.0).verdict == "MISS"
    assert _row("bench", api.OWNER, 5.0, 1.0).verdict == "PASS"
    assert _row("bench", api.OWNER, 5.1, 1.0).verdict == "MISS"
    assert _row("demo", api.ANONYMOUS, 30.0, 1.0).verdict == "-"
    ratios = api.ratios_of(
        [_row("bench", api.ANONYMOUS, 3.5, 1.0), _row("bench", api.CUSTOMER, 4.0, 1.0)]
    )
    assert ratios["api_public_worst_diff_ms"]["value"] == 2.5
    assert ratios["api_authenticated_worst_diff_ms"]["value"] == 3.0
    assert ratios["api_bench_rows_missed"]["value"] == 1


@pytest.mark.django_db
def test_statements_are_recorded_as_literal_sql_with_their_settings_and_replayed(monkeypatch):
    from django.contrib.auth import get_user_model

    uninstall = api._install_recorder()
    try:
        list(get_user_model().objects.filter(username="left out").values_list("id"))
        monkeypatch.setattr(api, "_recording", [])
        list(get_user_model().objects.filter(username="o'hara").values_list("id"))
        recorded = api._recording
    finally:
        uninstall()

    assert len(recorded) == 1
    assert recorded[0]["sql"].endswith("\"username\" = 'o''hara'")
    assert recorded[0]["settings"][0] == "UTC"
    replayer = api.Replayer()
    try:
        assert 0 < replayer.time(recorded) < 5
        # Its read-only session is its own, never a pooler's connection lent on.
        assert replayer.connection.info.port == int(settings.DATABASE_DIRECT["PORT"])
    finally:
        replayer.close()


def test_the_scenario_imports_before_django_is_set_up():
    """The capture process imports the scenario before it sets Django up: no case may
    import an app's module when it is defined."""
    done = subprocess.run(
        [sys.executable, "-c", "import bench.scenarios.api"],
        cwd=settings.BASE_DIR,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.django_db(transaction=True)
def test_requests_are_measured_in_pairs_served_then_replayed(live_server):
    """Each served request is followed by the replay of its captured SQL, in the capture
    process, so that the load's drift reaches both figures alike; a case of few requests
    takes them in turn again."""
    from urllib.parse import urlsplit, urlunsplit

    from django.core.signals import request_started
    from django.db import connection

    parts = urlsplit(settings.DATABASE_URL)
    database_url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    paths = [reverse("category-list"), reverse("merchant-list")]
    capturer = api.Capturer(dsn=database_url, server_env={})
    events = []

    class Logged:
        def replay(self, index):
            events.append(("replayed", index))
            return capturer.replay(index)

    def served(sender, environ, **kwargs):
        events.append(("served", environ["PATH_INFO"]))

    request_started.connect(served)
    try:
        captured = capturer.run(
            warm={"path": paths[0], "headers": {}},
            requests=[{"path": path, "headers": {}} for path in paths],
        )
        assert captured["errors"] == []
        assert captured["statements"][:2] != [0, 0]
        paired = api._paired(live_server.url, {}, paths, Logged())
    finally:
        request_started.disconnect(served)
        capturer.close()

    # The connection's first request is untimed; then each path in turn, served and
    # replayed, and again up to PAIRED_ROUNDS (a repeat answered from the cache is
    # served and not replayed).
    assert events[:5] == [
        ("served", paths[0]),
        ("served", paths[0]),
        ("replayed", 0),
        ("served", paths[1]),
        ("replayed", 1),
    ]
    assert [kind for kind, _ in events].count("served") == 1 + api.PAIRED_ROUNDS
    for at, (kind, index) in enumerate(events):
        if kind == "replayed":
            assert events[at - 1] == ("served", paths[index])
    assert paired.refused == []
    assert paired.replay_error is None
    assert len(paired.served) == len(paired.replayed) >= 2
    assert all(seconds > 0 for seconds in paired.replayed)
