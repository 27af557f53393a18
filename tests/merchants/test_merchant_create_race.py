"""Of concurrent creates of a merchant by one user, every loser gets the 403
`merchant_already_owned` a create after the winner gets, not the owner index's 409."""

import pytest

from merchants.models import Merchant
from tests import factories
from tests.market import api_client_as
from tests.threads import behind_an_uncommitted_write, run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)

MERCHANTS = "/api/v1/merchants/"
BODY = {
    "name": "Corner Bakery",
    "address": {
        "line1": "Torstraße 1",
        "city": "Berlin",
        "postal_code": "10119",
        "location": {"type": "Point", "coordinates": [13.401, 52.529]},
    },
}


def _already_owned(response) -> bool:
    return response.status_code == 403 and response.json()["code"] == "merchant_already_owned"


def test_every_loser_of_concurrent_creates_is_told_the_user_owns_a_merchant():
    owner = factories.user()

    def create():
        return api_client_as(owner).post(MERCHANTS, BODY, format="json")

    responses = run_in_threads(create, create, create)
    assert sorted(r.status_code for r in responses) == [201, 403, 403]
    assert all(_already_owned(r) for r in responses if r.status_code != 201)
    assert Merchant.objects.filter(owner=owner).count() == 1


def test_a_create_that_waited_for_a_concurrent_one_on_the_owner_index_is_a_403():
    """The race made certain: the winner's merchant is inserted and not yet committed, so
    the loser's check does not see it and its INSERT waits on the index until the commit."""
    owner = factories.user()
    response = behind_an_uncommitted_write(
        "WITH address AS ("
        " INSERT INTO merchants_address (line1, line2, city, postal_code, country, location)"
        " VALUES ('Torstraße 1', '', 'Berlin', '10119', '',"
        " 'SRID=4326;POINT(13.401 52.529)'::geography) RETURNING id, location)"
        " INSERT INTO merchants_merchant"
        " (name, description, phone, location, is_active, created_at, updated_at,"
        " address_id, owner_id)"
        " SELECT 'First', '', '', location, true, now(), now(), id, %s FROM address",
        [owner.pk],
        lambda: api_client_as(owner).post(MERCHANTS, BODY, format="json"),
    )
    assert _already_owned(response), response.content
    assert list(Merchant.objects.filter(owner=owner).values_list("name", flat=True)) == ["First"]
