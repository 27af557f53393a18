import functools

from django.contrib.auth import get_user_model
from django.db.models import Q
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


def user_active(*, user_id: int):
    """The user `user_id` as it stands now, if it may still authenticate (`ACTIVE`); None
    for one deactivated or deleted since. For what outlives the request that authenticated
    its caller: a stream ticket redeemed later, a live stream rechecking its caller."""
    return get_user_model()._default_manager.filter(ACTIVE.q(), pk=user_id).first()


def operator_tokens(*, key: str):
    """The API token `key`, if an active operator holds it: what `TokenAuthentication`
    and `IsOperator` let through, from the conditions `is_operator` tests (`key` first,
    which keeps the compiled SQL's order)."""
    return Token.objects.filter(Q(key=key), ACTIVE.q("user"), OPERATOR.q("user"))


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
    queryset = Token.objects.filter(Q(key=KEY_STAND_IN), ACTIVE.q("user")).values_list("user_id")
    return CompiledQuery(queryset, slots={"key": KEY_STAND_IN}).named_sql()


def operator_token_statement(*, key: str) -> tuple[str, list]:
    """A row if an active operator holds the API token `key`, none otherwise."""
    compiled = _operator_token_compiled()
    return compiled.sql, compiled.params(key=key)
