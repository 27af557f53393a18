"""Browser tests: Playwright for Python driving Debian's Chromium (`make setup` installs
both) against a live server of the test database.

Every page records its console errors and every request it makes, so that a test can
assert that nothing failed and nothing left the server's own host. A failing test leaves
a screenshot in `BROWSER_ARTIFACTS` (default `.local/test-artifacts/browser`), named
after the test, and says where in its report."""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("BROWSER_ARTIFACTS", settings.BASE_DIR / ".local/test-artifacts/browser")
)
# Without these, Chromium reaches for Google's hosts at start, which a closed network
# refuses, and as root it will not start sandboxed.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Watched:
    """A page and what it did: console errors, uncaught exceptions, requests."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("response", self._on_response)

    def _on_response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"{response.status} {response.url}")

    def foreign_requests(self) -> list[str]:
        local = ("data:", "blob:", "about:")
        return [
            url
            for url in self.requests
            if not url.startswith(self.base_url) and not url.startswith(local)
        ]

    def login(self, *, username: str, password: str, next_path: str) -> None:
        self.page.goto(f"{self.base_url}/admin/login/?next={next_path}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.page.click("input[type=submit]")
        self.page.wait_for_load_state("load")


@pytest.fixture(scope="module")
def chromium():
    """One Chromium for a module's tests (each gets a context of its own). Playwright's
    synchronous API keeps an event loop in this thread while it runs, so it must not
    outlive the module: pytest tears a module's fixtures down before it runs a test of
    another module. Meanwhile Django's check against database calls made beside a running
    loop is off: they are the tests' own, synchronous ones."""
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@contextmanager
def watched_page(request, chromium, base_url: str):
    """A fresh browser context (no cookies, no cache) and its page, on `base_url`; a
    screenshot if the test fails."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page(), base_url)
    yield watched
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        watched.page.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failure: {shot}")
    context.close()


@pytest.fixture
def browser_page(request, chromium, live_server):
    """A page on pytest-django's live server (a WSGI one, which cannot send a live stream
    as it comes: pages that open one are tested on `tests.uvicorn_served`)."""
    with watched_page(request, chromium, live_server.url) as watched:
        yield watched


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
