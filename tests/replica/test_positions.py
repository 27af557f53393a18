"""The cache's record of a user's last write position, for token clients' reads after
their writes (`_user_position`)."""

import pytest

from geomarket.db.replicas import _user_position
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("first", "then"),
    [(200, 100), (2**64 - 2, 2**53 + 1), (10**12, 99)],
    ids=["small", "past-a-lua-number", "fewer-digits"],
)
def test_a_write_answered_after_a_later_one_leaves_the_later_position(first, then):
    # Two requests of one user: the later write's answer is built first.
    user_id = factories.user().pk
    _user_position(user_id, written=first)
    _user_position(user_id, written=then)
    assert _user_position(user_id) == first
    _user_position(user_id, written=first + 1)
    assert _user_position(user_id) == first + 1


def test_no_position_is_kept_without_a_sticky_window(settings):
    settings.REPLICA_STICKY_SECONDS = 0
    user_id = factories.user().pk
    _user_position(user_id, written=100)
    assert _user_position(user_id) == 0
