"""Writes every app's services share."""

from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def model_update(*, instance: M, data: dict[str, Any]) -> M:
    """Set `data`'s fields on `instance` and save it: the last step of an update service,
    after its rules and its cache invalidation (HackSoft's `model_update`)."""
    for attr, value in data.items():
        setattr(instance, attr, value)
    instance.save()
    return instance
