"""Roles derived from a user: customer, merchant owner, courier, operator.

A role is not stored on the user. It follows from what exists: any authenticated
user is a customer, owning a merchant makes an owner, a courier profile makes a
courier, and `is_staff` makes an operator. The merchant and courier profiles live
in their own apps and reach the user through the reverse one-to-one accessors
`merchant` and `courier`.

The conditions on the user's own fields are declared once (`UserCondition`), so that
Python's check of a user object and the SQL that filters users (such as the operator
check inside the event-loop route's guarded reports) cannot drift apart.
"""

import functools
from dataclasses import dataclass
from enum import StrEnum

from django.db import connections
from django.db.models import Q

from geomarket.sql import CompiledQuery


class Role(StrEnum):
    CUSTOMER = "customer"
    MERCHANT_OWNER = "merchant_owner"
    COURIER = "courier"
    OPERATOR = "operator"


@dataclass(frozen=True)
class UserCondition:
    """Values some of a user's fields must have: tested on a user object by `holds`,
    and as an ORM filter by `q`, which both read the one `fields` declaration."""

    fields: tuple[tuple[str, object], ...]

    def holds(self, user) -> bool:
        return all(getattr(user, name, None) == value for name, value in self.fields)

    def q(self, relation: str = "") -> Q:
        """The filter on users, or on the users reached through `relation`."""
        prefix = f"{relation}__" if relation else ""
        return Q(*((prefix + name, value) for name, value in self.fields))


# Who may authenticate at all: Django's ModelBackend and DRF's TokenAuthentication both
# refuse an inactive user.
ACTIVE = UserCondition((("is_active", True),))
OPERATOR = UserCondition((("is_staff", True),))


# The user's profiles, by their reverse one-to-one accessors.
PROFILES = ("merchant", "courier")


# Stands in for the user's id in the compiled profile lookup: never a user's id.
_USER_STAND_IN = -7_000_001


@functools.cache
def _profile_ids_compiled(model) -> CompiledQuery:
    # Built and compiled once: the ORM's build of this join costs more CPU than the
    # statement, and owners' permission checks run it on every request.
    queryset = model._base_manager.filter(pk=_USER_STAND_IN).values_list(
        *(f"{accessor}__pk" for accessor in PROFILES)
    )
    return CompiledQuery(queryset, slots={"user": _USER_STAND_IN})


def profile_id_paths(relation: str) -> dict[str, str]:
    """ORM paths, from a model reaching the user through `relation`, to the ids of the
    user's profiles: for a lookup that reads the user to read these with it."""
    return {accessor: f"{relation}__{accessor}__pk" for accessor in PROFILES}


def remember_profile_ids(user, ids: dict[str, int | None]) -> None:
    """Keep the ids of the user's profiles (by accessor, from `profile_id_paths`) read
    along with the user, so that its roles need no query of their own."""
    user.__dict__["_profile_ids"] = {accessor: ids[accessor] for accessor in PROFILES}


def _profile_ids(user) -> dict[str, int | None]:
    """The ids of the user's profiles, None where there is none, read once per user object
    in one query: each accessor would load its whole profile (a merchant's location is a
    geometry to parse), one query each, to learn its id."""
    ids = user.__dict__.get("_profile_ids")
    if ids is None:
        compiled = _profile_ids_compiled(user.__class__)
        with connections[user._state.db or "default"].cursor() as cursor:
            cursor.execute(compiled.sql, compiled.params(user=user.pk))
            row = cursor.fetchone() or (None,) * len(PROFILES)
        ids = dict(zip(PROFILES, row, strict=True))
        user.__dict__["_profile_ids"] = ids
    return ids


def _related_id(user, accessor: str) -> int | None:
    cached = user._state.fields_cache
    if accessor in cached:
        # Loaded already, or set by this request (a merchant created for the user).
        related = cached[accessor]
        return related.pk if related is not None else None
    return _profile_ids(user)[accessor]


def user_merchant_id(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return _related_id(user, "merchant")


def user_courier_id(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return _related_id(user, "courier")


def is_operator(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and OPERATOR.holds(user))


def is_active_operator(user) -> bool:
    """An operator who may act at all: what Django's backends ask of a user, a superuser
    too, before any permission (an inactive user has none), with the operator's rule."""
    return ACTIVE.holds(user) and is_operator(user)


def merchant_scope(user) -> tuple[bool, int | None]:
    """What of merchants' own rows (drafts, stock) `user` sees: every merchant's (True,
    an operator), else only those of the merchant they own (its id; None: none)."""
    if is_operator(user):
        return True, None
    return False, user_merchant_id(user)


def is_merchant_owner(user) -> bool:
    return user_merchant_id(user) is not None


def is_courier(user) -> bool:
    return user_courier_id(user) is not None


def user_roles(user) -> list[Role]:
    if not getattr(user, "is_authenticated", False):
        return []
    roles = [Role.CUSTOMER]
    if is_merchant_owner(user):
        roles.append(Role.MERCHANT_OWNER)
    if is_courier(user):
        roles.append(Role.COURIER)
    if is_operator(user):
        roles.append(Role.OPERATOR)
    return roles
