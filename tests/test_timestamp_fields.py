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
    assert field(in_query=True).to_internal_value(text) == datetime(2027, 1, 4, 8, tzinfo=PLUS_ONE)


@pytest.mark.parametrize("field", [TimestampField, OffsetDateTimeField])
def test_a_body_keeps_its_space_before_the_offset_a_400(field):
    # A JSON body has the client's `+` as written: a space there is no ISO 8601.
    with pytest.raises(ValidationError):
        field().to_internal_value("2027-01-04T08:00:00 01:00")


def test_a_space_between_date_and_time_is_left_as_it_was():
    assert TimestampField(in_query=True).to_internal_value("2027-01-04 08:00:00") == datetime(
        2027, 1, 4, 8, tzinfo=UTC
    )
    with pytest.raises(ValidationError, match="offset"):
        OffsetDateTimeField(in_query=True).to_internal_value("2027-01-04 08:00:00")
    with pytest.raises(ValidationError):
        TimestampField(in_query=True).to_internal_value("2027-01-04T08:00:00 1:00")
