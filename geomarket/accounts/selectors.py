import functools
from dataclasses import dataclass
from enum import StrEnum
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework.authtoken.models import Token

from geomarket.accounts.roles import (
    ACTIVE,
    OPERATOR,
    user_courier_id,
    user_merchant_id,
    user_roles,
)
from geomarket.sql import CompiledQuery


def user_profile(*, user) -> dict:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "roles": [role.value for role in user_roles(user)],
        "merchant_id": user_merchant_id(user),
        "courier_id": user_courier_id(user),
    }


class CredentialKind(StrEnum):
    TOKEN = "token"  # noqa: S105 - the kind's name, no secret
    SESSION = "session"


@dataclass(frozen=True)
class Credential:
    """What authenticated a request (an API token's key, or a session's key), kept by what
    outlives the request, to be checked again (`user_active`)."""

    kind: CredentialKind
    key: str


def request_credential(request) -> Credential | None:
    """The credential that authenticated `request` (DRF's or Django's): its API token, else
    the session it is signed in by; None for neither."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, Token):
        return Credential(kind=CredentialKind.TOKEN, key=auth.key)
    session = getattr(request, "session", None)
    if auth is None and session is not None and session.session_key and SESSION_KEY in session:
        return Credential(kind=CredentialKind.SESSION, key=session.session_key)
    return None


def user_active(*, user_id: int, credential: Credential):
    """The user `user_id` as it stands now, if `credential` still authenticates it: the
    user active (`ACTIVE`), and its API token still the one it is (`token_holders`; a
    token deleted or made anew is not), or its session still signed in as it
    (`_session_holds`; signed out, expired or another user's is not); None otherwise. One
    query, the credential's row read with the user's. For what outlives the request that
    authenticated its caller: a stream ticket redeemed later, a live stream rechecking its
    caller."""
    users = get_user_model()._default_manager.filter(ACTIVE.q(), pk=user_id)
    if credential.kind == CredentialKind.TOKEN:
        held = token_holders(key=credential.key).filter(user_id=OuterRef("pk"))
        return users.filter(Exists(held)).first()
    # Sessions kept in the database (Django's default engine, this project's): their rows.
    store = import_module(settings.SESSION_ENGINE).SessionStore
    sessions = store.get_model_class()._default_manager.filter(
        session_key=credential.key, expire_date__gt=timezone.now()
    )
    user = users.annotate(session_data=Subquery(sessions.values("session_data"))).first()
    if user is None:
        return None
    data = user.__dict__.pop("session_data")
    if data is None or not _session_holds(session=store().decode(data), user=user):
        return None
    return user


def _session_holds(*, session: dict, user) -> bool:
    """Whether the session's data signs `user` in, as Django's `get_user` decides for a
    request: its user and an allowed backend named, and its hash the user's (its password
    unchanged since), by the current secret or a fallback one. `get_user` itself is not
    called: it reads the user again, and writes (it deletes a session it refuses, and
    gives one a fallback secret verified a new key, which the client never learns here)."""
    try:
        user_id = user._meta.pk.to_python(session[SESSION_KEY])
        backend = session[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return False
    if user_id != user.pk or backend not in settings.AUTHENTICATION_BACKENDS:
        return False
    session_hash = session.get(HASH_SESSION_KEY)
    hashes = (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    return bool(session_hash) and any(constant_time_compare(session_hash, h) for h in hashes)


def token_holders(*, key: str):
    """The API token `key`, if an active user holds it: whom `TokenAuthentication` lets
    in (`key` first, which keeps compiled SQL's order)."""
    return Token.objects.filter(Q(key=key), ACTIVE.q("user"))


def operator_tokens(*, key: str):
    """The API token `key`, if an active operator holds it: what `TokenAuthentication`
    and `IsOperator` let through, from the conditions `is_operator` tests (`key` first,
    which keeps the compiled SQL's order)."""
    return token_holders(key=key).filter(OPERATOR.q("user"))


# Stands in for a key in compiled statements: never a key, which is hex.
KEY_STAND_IN = "compiled-operator-key"


@functools.cache
def _operator_token_compiled() -> CompiledQuery:
    queryset = operator_tokens(key=KEY_STAND_IN).values_list("user_id")
    return CompiledQuery(queryset, slots={"key": KEY_STAND_IN})


@functools.cache
def token_holder_sql() -> str:
    """SQL answering the id of the active user holding the API token `%(key)s`, or no row:
    whom `TokenAuthentication` lets in, for a statement that checks its caller itself."""
    queryset = token_holders(key=KEY_STAND_IN).values_list("user_id")
    return CompiledQuery(queryset, slots={"key": KEY_STAND_IN}).named_sql()


def operator_token_statement(*, key: str) -> tuple[str, list]:
    """A row if an active operator holds the API token `key`, none otherwise."""
    compiled = _operator_token_compiled()
    return compiled.sql, compiled.params(key=key)
