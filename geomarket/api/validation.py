"""Input serializers with their fields built once, for the hot write paths.

Every DRF serializer instance deep-copies its declared fields, and each nested
serializer and list child its own, before it validates anything: for an order body
(eleven fields over two nested serializers) that is about four fifths of
`is_valid()`'s CPU. `prebuilt` builds a serializer's fields once and validates each
body with an instance of the serializer itself that shares them, so the serializer
stays the one declaration: its fields, `validate_<field>` methods, `validate()` and
errors, `is_valid()`'s own included, are DRF's, unchanged.

A shared field is only read while validating; everything DRF computes lazily on a field
(its `validators`, a nested serializer's `fields`) is computed here, before any request
can reach it from another thread. The serializer must not read `context`, `instance`,
`partial` or `initial_data` in its validation: they are the template's, empty.
"""

from collections.abc import Callable

from rest_framework import serializers


def _built(field) -> None:
    """Compute now what DRF computes on first use, so no request thread writes it."""
    field.validators  # noqa: B018
    if isinstance(field, serializers.ListSerializer):
        _built(field.child)
    elif isinstance(field, serializers.Serializer):
        for child in field.fields.values():
            _built(child)


def prebuilt(serializer_class: type[serializers.Serializer]) -> Callable[[object], dict]:
    """`data -> serializer_class(data=data)`'s `validated_data` after
    `is_valid(raise_exception=True)`, which raises the same `ValidationError` for an
    invalid body; the fields are built once instead of per call."""
    template = serializer_class()
    _built(template)
    shared = dict(template.__dict__)

    def validated(data) -> dict:
        serializer = serializer_class.__new__(serializer_class)
        serializer.__dict__.update(shared)
        serializer.initial_data = data
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    return validated
