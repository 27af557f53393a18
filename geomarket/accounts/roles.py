"""Roles derived from a user: customer, merchant owner, courier, operator.

A role is not stored on the user. It follows from what exists: any authenticated
user is a customer, owning a merchant makes an owner, a courier profile makes a
courier, and `is_staff` makes an operator. The merchant and courier profiles live
in their own apps and reach the user through the reverse one-to-one accessors
`merchant` and `courier`.
"""

from enum import StrEnum

from django.core.exceptions import ObjectDoesNotExist


class Role(StrEnum):
    CUSTOMER = "customer"
    MERCHANT_OWNER = "merchant_owner"
    COURIER = "courier"
    OPERATOR = "operator"


def _related_id(user, accessor: str) -> int | None:
    try:
        related = getattr(user, accessor)
    except (AttributeError, ObjectDoesNotExist):
        return None
    return related.pk if related is not None else None


def user_merchant_id(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return _related_id(user, "merchant")


def user_courier_id(user) -> int | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return _related_id(user, "courier")


def is_operator(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


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
