"""A credential checked again after its request (`user_active`: a stream ticket redeemed,
a live stream's recheck) is judged as a request bearing it would be: a session as
Django's `get_user`, an API token as DRF's `TokenAuthentication`; in one query."""

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from geomarket.accounts.models import User
from geomarket.accounts.selectors import Credential, CredentialKind, user_active
from geomarket.api.authentication import TokenAuthentication
from tests import factories

pytestmark = pytest.mark.django_db


def session_of(user) -> Credential:
    """A session signed in as `user`, as the console's sign-in makes one."""
    client = Client()
    client.force_login(user)
    return Credential(kind=CredentialKind.SESSION, key=client.session.session_key)


def token_of(user) -> Credential:
    return Credential(kind=CredentialKind.TOKEN, key=Token.objects.get(user=user).key)


def request_signs_in(credential: Credential) -> int | None:
    """Whom a request bearing `credential` is authenticated as (None: nobody)."""
    if credential.kind == CredentialKind.SESSION:
        request = HttpRequest()
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(credential.key)
        return get_user(request).pk
    http = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {credential.key}")
    request = Request(http, authenticators=[TokenAuthentication()])
    try:
        return request.user.pk
    except AuthenticationFailed:
        return None


def rechecked(user, credential: Credential, django_assert_num_queries) -> bool:
    with django_assert_num_queries(1):
        found = user_active(user_id=user.pk, credential=credential)
    assert found is None or found.pk == user.pk
    return found is not None


def _deactivated(user, credential) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def _password_changed(user, credential) -> None:
    user.set_password("another-Secret-456")
    user.save()


def _signed_out(user, credential) -> None:
    Session.objects.filter(pk=credential.key).delete()


def _expired(user, credential) -> None:
    past = timezone.now() - timedelta(seconds=1)
    Session.objects.filter(pk=credential.key).update(expire_date=past)


def _token_deleted(user, credential) -> None:
    Token.objects.filter(pk=credential.key).delete()


def _token_made_anew(user, credential) -> None:
    _token_deleted(user, credential)
    Token.objects.create(user=user)


def _unchanged(user, credential) -> None:
    pass


# Each kind of credential, with what may befall it: a session as Django signs a request in
# by it, a token as DRF authenticates one.
CHANGES = [
    *((session_of, change) for change in (_deactivated, _password_changed, _signed_out, _expired)),
    *((token_of, change) for change in (_deactivated, _token_deleted, _token_made_anew)),
    (session_of, _unchanged),
    (token_of, _unchanged),
]


@pytest.mark.parametrize(("kind", "change"), CHANGES)
def test_a_credential_is_rechecked_as_a_request_is_signed_in_by_it(
    kind, change, django_assert_num_queries
):
    user = factories.user()
    credential = kind(user)
    change(user, credential)
    holds = rechecked(user, credential, django_assert_num_queries)
    assert holds == (request_signs_in(credential) == user.pk)
    assert holds == (change is _unchanged)


@pytest.mark.parametrize("kind", [session_of, token_of])
def test_another_users_credential_does_not_hold_for_a_user(kind, django_assert_num_queries):
    user, other = factories.user(), factories.user()
    credential = kind(other)
    assert request_signs_in(credential) == other.pk
    assert not rechecked(user, credential, django_assert_num_queries)
