from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operations console in the browser (`/console/`): above every domain app, whose
    selectors it reads; it owns no table."""

    name = "console"
