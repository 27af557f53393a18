"""Who may do what, expressed once and shared by every app."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from geomarket.accounts.roles import is_operator, user_merchant_id


def anonymous_may_call(view, method: str) -> bool:
    """Whether the view's permissions let an anonymous caller through for `method`:
    asked of the permissions themselves, so that what is public is declared once, by
    whatever permission class says so. The schema marks such operations callable without
    credentials, and their reads are open to web pages of other origins
    (`geomarket.api.cors`)."""
    asked = HttpRequest()
    asked.method = method
    request = Request(asked)
    request.user = AnonymousUser()
    return all(permission.has_permission(request, view) for permission in view.get_permissions())


def can_manage_merchant(user, merchant_id: int | None) -> bool:
    """Operators manage every merchant; an owner manages only their own."""
    if is_operator(user):
        return True
    return merchant_id is not None and user_merchant_id(user) == merchant_id


class IsOperator(BasePermission):
    message = "Only operators may do this."

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user)


class IsOperatorOrReadOnly(BasePermission):
    message = "Only operators may change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_operator(request.user)


class IsOwnerOrOperator(BasePermission):
    """Merchant owners and operators; object access is scoped by the view's selector."""

    message = "Only merchant owners and operators may do this."

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user) or user_merchant_id(request.user) is not None
