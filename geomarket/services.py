"""Writes every app's services share."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model

from geomarket.errors import DomainError

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


@contextmanager
def unique_claim(*, taken: Callable[[], bool], refusal: DomainError) -> Iterator[None]:
    """Run the block's write of a row a unique index guards (a product's stock, a slug, an
    owner's merchant, a username) so that losing a race answers as the check before it.

    Of two concurrent writes both pass that check, and the index makes the second wait
    for the first to commit and fail. The write runs in a savepoint, so the transaction
    goes on and sees, in a new snapshot, the row the first committed: when `taken()` now
    holds, `refusal` is raised, the answer a later request gets; any other refusal of
    the database is raised as it is."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if taken():
            raise refusal from exc
        raise
