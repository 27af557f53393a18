"""The console works with no internet access: what its page names, and what those files
name in turn (a style's `url(...)`, a script's source map), is served by this server."""

import posixpath
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from tests import factories

pytestmark = pytest.mark.django_db

NAMED_BY_PAGE = re.compile(r'(?:src|href)="([^"]+)"')
NAMED_BY_ASSET = re.compile(r"sourceMappingURL=(\S+)|url\(\s*['\"]?([^'\")]+)")


def _static_file(url: str) -> str | None:
    """The file the static URL `url` serves, or None."""
    prefix = "/" + settings.STATIC_URL.lstrip("/")
    return finders.find(url.removeprefix(prefix)) if url.startswith(prefix) else None


def test_every_file_the_console_names_is_served_here(client):
    client.force_login(factories.user(is_staff=True))
    page = client.get("/console/").content.decode()
    assets = [url for url in NAMED_BY_PAGE.findall(page) if url.endswith((".js", ".css"))]
    assert assets
    for asset in assets:
        path = _static_file(asset)
        assert path is not None, asset
        with open(path, encoding="utf-8") as text:
            for match in NAMED_BY_ASSET.finditer(text.read()):
                named = match.group(1) or match.group(2)
                if named.startswith("data:"):
                    continue
                parts = urlsplit(named)
                assert not parts.scheme, (asset, named)
                assert not parts.netloc, (asset, named)
                url = posixpath.join(posixpath.dirname(asset), named)
                assert _static_file(posixpath.normpath(url)) is not None, (asset, named)
