"""`GET /`: a page that says what the server is and links where to go from there."""

from html.parser import HTMLParser

import pytest

from tests.search.served import served

pytestmark = pytest.mark.django_db(transaction=True)

# Linked before it exists: the contract's console is coming.
NOT_YET_SERVED = {"/console/"}


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in {"href", "src"}]


async def test_the_home_page_links_the_docs_the_console_the_admin_and_the_health_check():
    async with served() as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        parser = Links()
        parser.feed(page.text)
        assert {"/api/docs/", "/console/", "/admin/", "/healthz"} <= set(parser.targets)
        # Nothing is fetched from elsewhere: every link and asset is a path on this server.
        assert all(target.startswith("/") for target in parser.targets)
        assert "//" not in page.text.replace("<!doctype html>", "")
        answers = {
            target: (await client.get(target)).status_code
            for target in set(parser.targets) - NOT_YET_SERVED
        }
    assert all(status != 404 for status in answers.values()), answers
    assert answers["/healthz"] == 200
    assert answers["/api/docs/"] == 200


async def test_the_home_page_answers_only_reads():
    async with served() as client:
        assert (await client.head("/")).status_code == 200
        refused = await client.post("/")
    assert refused.status_code == 405
    assert refused.json() == {"detail": 'Method "POST" not allowed.'}
    assert refused.headers["allow"] == "GET, HEAD"
