import pytest
from django.core.checks import run_checks


@pytest.mark.parametrize(
    ("engine", "refused"),
    [
        ("django.contrib.sessions.backends.db", False),
        ("django.contrib.sessions.backends.cached_db", False),
        ("django.contrib.sessions.backends.cache", True),
        ("django.contrib.sessions.backends.signed_cookies", True),
    ],
)
def test_sessions_are_kept_where_streams_recheck_them(settings, engine, refused):
    settings.SESSION_ENGINE = engine
    ids = {message.id for message in run_checks()}
    assert ("accounts.E001" in ids) is refused
