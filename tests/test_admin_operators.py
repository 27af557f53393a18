"""The admin is every operator's (API.md: `/admin/`, operators), a superuser or not; the
standing that makes operators and superusers stays a superuser's to give."""

import pytest
from django.contrib import admin
from django.urls import reverse

from geomarket.accounts import roles
from geomarket.accounts.models import User
from tests import factories
from tests.admin_forms import submit

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Secret-123"


def _changelists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    ]


def _signed_in(client, user):
    client.force_login(user)
    return user


def test_an_operator_who_is_not_a_superuser_sees_every_registered_model(client):
    _signed_in(client, factories.user(is_staff=True))
    index = client.get("/admin/")
    assert index.status_code == 200
    page = index.content.decode()
    assert "permission to view or edit anything" not in page
    for url in _changelists():
        assert f'href="{url}"' in page, url


def test_an_operator_who_is_not_a_superuser_edits_a_zone_on_its_map_page(client):
    _signed_in(client, factories.user(is_staff=True))
    zone = factories.zone(merchant=factories.merchant())
    assert client.get("/admin/merchants/deliveryzone/").status_code == 200
    url = f"/admin/merchants/deliveryzone/{zone.pk}/change/"
    saved = submit(client, url, "deliveryzone_form", {"name": "Renamed", "delivery_fee": "4.50"})
    assert saved.status_code == 302
    zone.refresh_from_db()
    assert (zone.name, str(zone.delivery_fee)) == ("Renamed", "4.50")


def test_a_user_who_is_not_an_operator_is_refused_the_admin(client):
    user = _signed_in(client, factories.user())
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/merchants/deliveryzone/").status_code == 302
    assert not user.has_perm("merchants.view_deliveryzone")
    client.logout()
    signed = client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    assert signed.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_an_inactive_operator_has_no_permission():
    operator = factories.user(is_staff=True)
    assert operator.has_perm("merchants.change_deliveryzone")
    operator.is_active = False
    assert not operator.has_perm("merchants.change_deliveryzone")
    assert not operator.has_module_perms("merchants")


def test_the_admin_opens_to_whom_the_operator_rule_names(client, monkeypatch):
    """The admin's entry, its sign-in and its permissions all read `roles.OPERATOR`: moved
    to another field, they follow it, and `is_staff` alone opens nothing."""
    chosen = factories.user()
    staff = factories.user(is_staff=True)
    monkeypatch.setattr(roles, "OPERATOR", roles.UserCondition((("username", chosen.username),)))
    _signed_in(client, staff)
    assert client.get("/admin/").status_code == 302
    client.logout()
    signed = client.post("/admin/login/", {"username": chosen.username, "password": PASSWORD})
    assert signed.status_code == 302
    assert client.get("/admin/merchants/deliveryzone/").status_code == 200


def test_an_operator_who_is_not_a_superuser_gives_no_standing(client):
    _signed_in(client, factories.user(is_staff=True))
    customer = factories.user()
    url = f"/admin/accounts/user/{customer.pk}/change/"
    changes = {"email": "new@example.com", "is_staff": "on", "is_superuser": "on"}
    assert submit(client, url, "user_form", changes).status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.is_staff, customer.is_superuser) == (
        "new@example.com",
        False,
        False,
    )


@pytest.mark.parametrize("standing", ["superuser", "operator"])
def test_an_operator_who_is_not_a_superuser_changes_no_account_with_standing(client, standing):
    _signed_in(client, factories.user(is_staff=True))
    other = factories.user(is_staff=True)
    other.is_superuser = standing == "superuser"
    other.save()
    url = f"/admin/accounts/user/{other.pk}/"
    assert client.get(f"{url}change/").status_code == 200
    refused = [
        client.post(f"{url}change/", {"username": "taken", "is_active": ""}),
        client.post(
            f"{url}password/", {"password1": "x-New-Secret-9", "password2": "x-New-Secret-9"}
        ),
        client.post(f"{url}delete/", {"post": "yes"}),
    ]
    assert [answer.status_code for answer in refused] == [403, 403, 403]
    kept = User.objects.get(pk=other.pk)
    assert (kept.username, kept.is_active, kept.check_password(PASSWORD)) == (
        other.username,
        True,
        True,
    )


def _superuser():
    boss = factories.user(is_staff=True)
    boss.is_superuser = True
    boss.save()
    return boss


def test_a_superuser_gives_operator_standing(client):
    _signed_in(client, _superuser())
    customer = factories.user()
    url = f"/admin/accounts/user/{customer.pk}/change/"
    assert submit(client, url, "user_form", {"is_staff": "on"}).status_code == 302
    customer.refresh_from_db()
    assert customer.is_staff


def test_an_operator_who_is_not_a_superuser_lists_tokens_without_their_keys(client):
    _signed_in(client, factories.user(is_staff=True))
    customer = factories.user()
    key = customer.auth_token.key
    listed = client.get("/admin/authtoken/tokenproxy/")
    assert listed.status_code == 200
    assert customer.username in listed.content.decode()
    assert key not in listed.content.decode()
    # Nor read out by a prefix filter, nor on the token's own pages.
    assert (
        client.get("/admin/authtoken/tokenproxy/", {"key__startswith": key[0]}).status_code == 400
    )
    token_pages = f"/admin/authtoken/tokenproxy/{customer.pk}/"
    assert client.get(f"{token_pages}change/").status_code == 403
    assert client.get(f"{token_pages}delete/").status_code == 403
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 403


def test_a_superuser_sees_the_token_keys(client):
    _signed_in(client, _superuser())
    customer = factories.user()
    listed = client.get("/admin/authtoken/tokenproxy/")
    assert customer.auth_token.key in listed.content.decode()


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        ("authtoken/tokenproxy", "pk__startswith"),
        ("authtoken/tokenproxy", "pk__gt"),
        ("accounts/user", "auth_token__key__startswith"),
        ("accounts/user", "auth_token__pk__startswith"),
        ("accounts/user", "auth_token__gt"),
    ],
)
def test_no_filter_reads_a_token_key_out(client, changelist, lookup):
    """A key is the token's primary key: a filter on it by any name, or on a relation to
    a token compared itself, would tell a prefix or a range of it by the rows it keeps,
    key by key (a superuser's, to act as them through the API)."""
    _signed_in(client, factories.user(is_staff=True))
    boss = _superuser()
    key = boss.auth_token.key
    probe = key[:3] if lookup.endswith("startswith") else "0"
    answer = client.get(f"/admin/{changelist}/", {lookup: probe})
    assert answer.status_code == 400
    assert boss.username not in answer.content.decode()
    # The filters that read no key still work.
    for page, harmless in [
        ("authtoken/tokenproxy", {"user__id__exact": boss.pk}),
        ("accounts/user", {"is_superuser__exact": "1"}),
    ]:
        answer = client.get(f"/admin/{page}/", harmless)
        assert answer.status_code == 200
        assert boss.username in answer.content.decode()
