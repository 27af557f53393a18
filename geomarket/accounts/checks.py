"""Start-up checks of the settings the accounts' rules rest on."""

from importlib import import_module

from django.conf import settings
from django.core.checks import Error, register


@register()
def sessions_in_the_database(app_configs=None, **kwargs) -> list[Error]:
    """A live stream rechecks the session it was opened by in the same query as its user
    (`selectors.user_active`), reading the session's row: an engine that keeps sessions
    elsewhere (cache, signed cookies, files) would fail every such recheck."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if hasattr(store, "get_model_class"):
        return []
    return [
        Error(
            f"SESSION_ENGINE {settings.SESSION_ENGINE!r} keeps no session rows: streams "
            "recheck their session in the database.",
            hint="Use django.contrib.sessions.backends.db or cached_db.",
            id="accounts.E001",
        )
    ]
