import pytest
from django.core import signals


@pytest.fixture
def django_entries():
    """How many requests reached Django."""
    seen = []

    def count(**kwargs):
        seen.append(kwargs)

    signals.request_started.connect(count)
    yield seen
    signals.request_started.disconnect(count)
