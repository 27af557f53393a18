import uuid

import pytest
from django.core import signals
from django.db import transaction
from rest_framework.test import APIClient

from geomarket.accounts.services import user_register
from tests import factories, watching_email
from tests.market import api_client_as, build_market


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db):
    def make(
        *, username: str | None = None, is_staff: bool = False, password: str = "pw-Secret-123"
    ):
        # Named as the factories name users: a counter of its own here gave a name a
        # fixture's factory-made user already had.
        user, _token = user_register(
            username=username or factories.new_username(), password=password, email=""
        )
        if is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        return user

    return make


@pytest.fixture
def client_for(make_user):
    """An APIClient authenticated with the user's token, as real apps call the API."""
    return api_client_as


@pytest.fixture
def as_user(client_for):
    """`as_user(None)` is an anonymous client; otherwise a token-authenticated one."""
    return api_client_as


@pytest.fixture(autouse=True)
def isolated_redis_keys(settings, monkeypatch):
    """Each test files cache entries, versions and rate-limit buckets under its own prefix,
    so no answer or budget leaks from one test (or an earlier run) into another."""
    from geomarket import answer_cache

    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"gm-test-{uuid.uuid4().hex}"}
    }
    monkeypatch.setattr(answer_cache, "_breaker", answer_cache._Breaker())


@pytest.fixture(autouse=True)
def routes_unlearned():
    """The event-loop routes serve a host only after Django has: each test starts
    unlearned."""
    from geomarket.lane import token_routes
    from geomarket.lane.routes import declared_routes

    for route in declared_routes():
        if route.learned is not None:
            route.learned.clear()
    token_routes.learned.clear()


@pytest.fixture
async def async_pool_closed():
    """Close the ASGI server's own database pool in the test's event loop: its
    connections would otherwise outlive the loop and hold the test database open."""
    from geomarket.lane import async_db

    yield
    await async_db.pools.close()


@pytest.fixture(scope="module")
def module_db(django_db_setup, django_db_blocker):
    """One transaction around a module's tests, for rows that take long to make and that
    every test of the module reads: a module-scoped fixture that asks for this one makes
    them once, each test runs in a savepoint of it (its own writes undone after it), and
    the rows are gone after the module. For modules of `django_db` tests only: a
    transactional test's threads would not see the rows, and its flush would run inside
    this transaction."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def market(db, as_user):
    return build_market(as_user)


@pytest.fixture
def django_entries():
    """How many requests reached Django."""
    seen = []

    def count(**kwargs):
        seen.append(kwargs)

    signals.request_started.connect(count)
    yield seen
    signals.request_started.disconnect(count)


@pytest.fixture
def watched_email(settings):
    """Every email of the test goes through `tests.watching_email`; what it saw of each."""
    settings.EMAIL_BACKEND = "tests.watching_email.WatchingBackend"
    watching_email.reset()
    yield watching_email.sent
    watching_email.go_on.set()
