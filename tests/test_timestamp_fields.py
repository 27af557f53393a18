"""Timestamps in query strings: an offset's `+` written unencoded arrives as a space."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rest_framework.exceptions import ValidationError

from geomarket.api.fields import OffsetDateTimeField, TimestampField

PLUS_ONE = timezone(timedelta(hours=1))


@pytest.mark.parametrize("field", [TimestampField, OffsetDateTimeField])
@pytest.mark.parametrize(
    "text", ["2027-01-04T08:00:00 01:00", "2027-01-04T08:00:00 0100", "2027-01-04T08:00 01"]
)
def test_a_space_before_the_offset_is_its_plus(field, text):
    assert field().to_internal_value(text) == datetime(2027, 1, 4, 8, tzinfo=PLUS_ONE)


def test_a_space_between_date_and_time_is_left_as_it_was():
    assert TimestampField().to_internal_value("2027-01-04 08:00:00") == datetime(
        2027, 1, 4, 8, tzinfo=UTC
    )
    with pytest.raises(ValidationError, match="offset"):
        OffsetDateTimeField().to_internal_value("2027-01-04 08:00:00")
    with pytest.raises(ValidationError):
        TimestampField().to_internal_value("2027-01-04T08:00:00 1:00")
