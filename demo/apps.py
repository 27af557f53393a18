from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo and benchmark data (`manage.py seed_demo`); it owns no tables.

    It writes the tables of every other app, so it sits on top of them all and no app
    imports it.
    """

    name = "demo"
