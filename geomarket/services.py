"""Writes every app's services share."""

from typing import Any, TypeVar

from django.db.models import Model

M = TypeVar("M", bound=Model)


def model_update(*, instance: M, data: dict[str, Any]) -> M:
    """Set `data`'s fields on `instance` and save those alone, with its `auto_now` fields:
    the last step of an update service, after its rules and its cache invalidation
    (HackSoft's `model_update`). Saving the whole row would write back every other column
    as `instance` read it, undoing what another transaction committed since: stock an
    order took or a cancellation gave back, a courier's ping or its status."""
    for attr, value in data.items():
        setattr(instance, attr, value)
    stamped = [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]
    instance.save(update_fields=[*data, *stamped])
    return instance
