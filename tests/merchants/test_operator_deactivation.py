"""An operator's deactivation of a merchant holds against its owner (API.md: merchant
write "owner, operator"): only an operator reactivates it, by the API or the admin. The
owner still turns its own merchant off and on again."""

import pytest
from django.contrib.gis.geos import Point
from rest_framework.test import APIClient

from merchants.models import Merchant
from merchants.services import MerchantDeactivatedByOperator, address_create, merchant_update
from tests import factories
from tests.admin_forms import submit
from tests.rows import rows

pytestmark = pytest.mark.django_db

MERCHANTS = "/api/v1/merchants/"
REFUSED = "merchant_deactivated_by_operator"


def _session_client(user) -> APIClient:
    """Signed in as the console signs in: a session, not a token."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture(params=["token", "session"])
def shop(request, as_user):
    """A merchant, its owner's client (by token as apps call, or by session as the
    console does) and an operator's."""
    owner = factories.user()
    merchant = factories.merchant(owner=owner)
    owner_client = as_user(owner) if request.param == "token" else _session_client(owner)
    return {
        "merchant": merchant,
        "url": f"{MERCHANTS}{merchant.pk}/",
        "owner": owner_client,
        "operator": as_user(factories.user(is_staff=True)),
    }


def _active(shop) -> bool:
    return Merchant.objects.get(pk=shop["merchant"].pk).is_active


def _set(client, shop, is_active: bool):
    return client.patch(shop["url"], {"is_active": is_active}, format="json")


def test_an_owner_cannot_reactivate_a_merchant_an_operator_deactivated(shop):
    assert _set(shop["operator"], shop, False).status_code == 200
    before = rows(Merchant)
    refused = _set(shop["owner"], shop, True)
    assert refused.status_code == 403
    assert refused.json()["code"] == REFUSED
    assert rows(Merchant) == before


def test_an_owners_put_that_would_reactivate_it_is_refused_whole(shop):
    assert _set(shop["operator"], shop, False).status_code == 200
    before = rows(Merchant)
    # Left out of a PUT, `is_active` is its default, true.
    body = shop["owner"].get(shop["url"]).json()
    body = {key: body[key] for key in ("name", "description", "phone", "address")}
    refused = shop["owner"].put(shop["url"], {**body, "name": "Back again"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, REFUSED)
    assert rows(Merchant) == before
    kept = shop["owner"].put(shop["url"], {**body, "is_active": False}, format="json")
    assert kept.status_code == 200


def test_the_owner_still_edits_a_merchant_an_operator_deactivated(shop):
    assert _set(shop["operator"], shop, False).status_code == 200
    renamed = shop["owner"].patch(shop["url"], {"name": "Renamed"}, format="json")
    assert (renamed.status_code, renamed.json()["is_active"]) == (200, False)
    # Setting it inactive again is no reactivation, and lifts nothing.
    assert _set(shop["owner"], shop, False).status_code == 200
    assert _set(shop["owner"], shop, True).status_code == 403
    assert not _active(shop)


def test_an_operator_reactivates_it_and_then_the_owner_manages_it_again(shop):
    assert _set(shop["operator"], shop, False).status_code == 200
    reactivated = _set(shop["operator"], shop, True)
    assert (reactivated.status_code, reactivated.json()["is_active"]) == (200, True)
    assert _set(shop["owner"], shop, False).status_code == 200
    assert _set(shop["owner"], shop, True).status_code == 200
    assert _active(shop)


def test_an_owner_reactivates_a_merchant_it_deactivated_itself(shop):
    assert _set(shop["owner"], shop, False).status_code == 200
    assert not _active(shop)
    reactivated = _set(shop["owner"], shop, True)
    assert (reactivated.status_code, reactivated.json()["is_active"]) == (200, True)


def test_an_operator_deactivating_a_merchant_its_owner_turned_off_holds_it(shop):
    assert _set(shop["owner"], shop, False).status_code == 200
    assert _set(shop["operator"], shop, False).status_code == 200
    assert _set(shop["owner"], shop, True).status_code == 403
    assert not _active(shop)


def test_a_merchant_an_operator_deactivated_in_the_admin_holds_against_its_owner(client, as_user):
    owner = factories.user()
    merchant = factories.merchant(owner=owner)
    url = f"{MERCHANTS}{merchant.pk}/"
    client.force_login(factories.user(is_staff=True))
    page = f"/admin/merchants/merchant/{merchant.pk}/change/"
    assert submit(client, page, "merchant_form", {}, remove=["is_active"]).status_code == 302
    refused = as_user(owner).patch(url, {"is_active": True}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, REFUSED)
    assert submit(client, page, "merchant_form", {"is_active": "on"}).status_code == 302
    assert as_user(owner).patch(url, {"is_active": False}, format="json").status_code == 200
    assert as_user(owner).patch(url, {"is_active": True}, format="json").status_code == 200


def test_a_merchant_an_operator_adds_inactive_in_the_admin_holds_against_its_owner(client, as_user):
    owner = factories.user()
    address = address_create(
        line1="Torstraße 1", city="Berlin", postal_code="10119", location=Point(13.4, 52.5)
    )
    client.force_login(factories.user(is_staff=True))
    fields = {"owner": str(owner.pk), "name": "Held", "address": str(address.pk)}
    page = "/admin/merchants/merchant/add/"
    added = submit(client, page, "merchant_form", fields, remove=["is_active"])
    assert added.status_code == 302
    merchant = Merchant.objects.get(owner=owner)
    assert not merchant.is_active
    refused = as_user(owner).patch(f"{MERCHANTS}{merchant.pk}/", {"is_active": True}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, REFUSED)


def test_the_service_lifts_an_operators_deactivation_only_for_an_operator():
    merchant = factories.merchant()
    operator = factories.user(is_staff=True)
    merchant_update(merchant=merchant, data={"is_active": False}, actor=operator)
    for someone in (None, merchant.owner, factories.user()):
        with pytest.raises(MerchantDeactivatedByOperator):
            merchant_update(merchant=merchant, data={"is_active": True}, actor=someone)
    merchant_update(merchant=merchant, data={"is_active": True}, actor=operator)
    assert Merchant.objects.get(pk=merchant.pk).is_active


def test_an_owner_deletes_no_merchant_an_operator_holds(shop):
    """Deleting would let the owner start afresh with a new merchant, undoing the hold."""
    assert (
        shop["operator"].patch(shop["url"], {"is_active": False}, format="json").status_code == 200
    )
    refused = shop["owner"].delete(shop["url"])
    assert (refused.status_code, refused.json()["code"]) == (403, REFUSED)
    assert Merchant.objects.filter(pk=shop["merchant"].pk).exists()
    assert shop["operator"].delete(shop["url"]).status_code == 204
    assert not Merchant.objects.filter(pk=shop["merchant"].pk).exists()


def test_an_owner_deletes_its_merchant_it_turned_off_itself(shop):
    assert shop["owner"].patch(shop["url"], {"is_active": False}, format="json").status_code == 200
    assert shop["owner"].delete(shop["url"]).status_code == 204
    assert not Merchant.objects.filter(pk=shop["merchant"].pk).exists()


def test_the_admin_deletes_a_merchant_an_operator_holds(client):
    operator = factories.user(is_staff=True)
    client.force_login(operator)
    merchant = factories.merchant()
    Merchant.objects.filter(pk=merchant.pk).update(is_active=False, deactivated_by_operator=True)
    url = f"/admin/merchants/merchant/{merchant.pk}/delete/"
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Merchant.objects.filter(pk=merchant.pk).exists()
