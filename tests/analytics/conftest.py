import pytest

from tests import factories
from tests.analytics.history import build_history


@pytest.fixture
def history():
    """~300 orders over March 2026, most delivered, with known random contents."""
    return build_history()


@pytest.fixture
def operator_user():
    return factories.user(is_staff=True)
