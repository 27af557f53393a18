"""The `id` path converter: a row's id in a URL, as every app's paths take it."""

from django.urls import register_converter

from geomarket.api.fields import BIGINT_MAX

# The converter's name in a path: `<id:merchant_id>`.
ID = "id"


class IdConverter:
    """A primary key in a path: ASCII digits, within bigint, the type of every id column.

    Django's `int` converter takes any run of digits. A value past bigint then reached
    the database, which refused it: a 400 from the views that send the id as a statement's
    argument, where every other view answered 404. Here such a path matches no route, so
    every view answers 404 alike: no row has that id.
    """

    # 19 digits hold bigint's largest value; a longer run is refused without `int()`.
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > BIGINT_MAX:
            # Django takes a ValueError as "this route does not match".
            raise ValueError(f"{value} is past the largest id.")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def register() -> None:
    """Called by the root URL conf before it includes the apps' paths."""
    register_converter(IdConverter, ID)
