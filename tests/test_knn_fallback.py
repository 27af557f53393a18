"""A walk in `<->` order that PostgreSQL stops with "index returned tuples in wrong order"
(PostGIS's index distance a rounding error above the rechecked one) is answered by the
same statement sorted without the index."""

import pytest
from django.db import DataError, InternalError, connection, transaction

from geomarket.sql import KNN_ORDER_ERROR, fetch_all, fetch_dicts, fetch_value

pytestmark = pytest.mark.django_db(transaction=True)

# Raises the walk's error while index scans are on, as the failing scan does.
WALK = """
SELECT CASE WHEN current_setting('enable_indexscan') = 'on'
            THEN geomarket_test_walk_fails() ELSE 42 END AS answer
"""


@pytest.fixture
def failing_walk():
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION geomarket_test_walk_fails() RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = '{KNN_ORDER_ERROR}'; END $$
            """
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION geomarket_test_walk_fails()")


def test_each_fetch_answers_from_the_sorted_statement(failing_walk):
    assert fetch_value(WALK, {}) == 42
    assert fetch_all(WALK, {}) == [(42,)]
    assert fetch_dicts(WALK, {}) == [{"answer": 42}]
    # The setting was the retry's own: the connection walks indexes again.
    assert fetch_value("SELECT current_setting('enable_indexscan')", {}) == "on"


def test_other_errors_and_errors_inside_a_transaction_are_raised(failing_walk):
    with pytest.raises(DataError, match="division by zero"):
        fetch_value("SELECT 1 / (SELECT 0)", {})
    with pytest.raises(InternalError, match=KNN_ORDER_ERROR), transaction.atomic():
        fetch_value(WALK, {})
