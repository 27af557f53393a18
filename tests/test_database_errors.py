"""How a database error a request meets is answered: refused for its size (SQLSTATE class
54) it is the request's doing, a 400; cancelled or cut off, the database's, a 503."""

import pytest
from django.db import OperationalError, connection, transaction

from geomarket.api.exceptions import exception_handler

pytestmark = pytest.mark.django_db


def _raised(sql: str) -> OperationalError:
    with (
        pytest.raises(OperationalError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    return caught.value


def test_a_statement_refused_for_its_size_is_a_400_not_an_outage():
    # Past the 1 MB a search vector may hold: "string is too long for tsvector".
    refused = _raised(
        "SELECT to_tsvector('simple', string_agg(md5(n::text), ' ')) "
        "FROM generate_series(1, 40000) n"
    )
    assert refused.__cause__.sqlstate.startswith("54")
    answer = exception_handler(refused, {})
    assert answer.status_code == 400
    assert "Retry-After" not in answer


def test_a_statement_the_database_cancels_is_still_a_503():
    cancelled = _raised("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)")
    assert not cancelled.__cause__.sqlstate.startswith("54")
    answer = exception_handler(cancelled, {})
    assert (answer.status_code, answer["Retry-After"]) == (503, "5")
