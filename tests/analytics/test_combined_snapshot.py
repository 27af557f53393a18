"""`orders/analytics` reads its three parts in one snapshot (`analytics.selectors`)."""

import dataclasses
import threading

import pytest
from django.db import connection
from django.db.models import F

from analytics import selectors
from analytics.models import PlatformDay
from tests import factories

# A commit of another connection, seen or not by this request's own: no test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/orders/analytics/"
PARAMS = {"date_from": "2026-03-01", "date_to": "2026-03-31", "format": "csv"}


def _committed_elsewhere():
    # The platform's revenue of a day, which the revenue and merchants parts read, grows
    # as a delivery would make it grow.
    day, shard = PlatformDay.objects.order_by("day", "shard").values_list("day", "shard")[0]
    PlatformDay.objects.filter(day=day, shard=shard).update(revenue=F("revenue") + 1000)
    connection.close()


def _after_a_commit(statement):
    def built(**arguments):
        made = statement(**arguments)
        worker = threading.Thread(target=_committed_elsewhere)
        worker.start()
        worker.join()
        return made

    return built


def test_a_commit_between_the_csv_parts_shows_in_none_of_them(history, as_user, monkeypatch):
    operator = as_user(factories.user(is_staff=True))
    before = operator.get(URL, PARAMS).content
    # The top products are read, then the commit, then the revenue and the merchants.
    first, second, *rest = selectors.COMBINED_PARTS
    second = dataclasses.replace(second, statement=_after_a_commit(second.statement))
    monkeypatch.setattr(selectors, "COMBINED_PARTS", (first, second, *rest))
    assert operator.get(URL, PARAMS).content == before
    monkeypatch.undo()
    assert operator.get(URL, PARAMS).content != before
