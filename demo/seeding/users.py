"""Seeded users: the one row shape the demo accounts, the bulk owners, the customers and
the couriers are all written with."""

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

from demo.seeding.context import SeedContext, copy_rows
from geomarket.accounts.models import User

# The columns `user_row` gives, in its order.
USER_COLUMNS = (
    "id",
    "password",
    "last_login",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
)


def user_row(
    *,
    user_id: int,
    username: str,
    first_name: str,
    last_name: str,
    joined_at: datetime,
    password: str | None = None,
    operator: bool = False,
) -> tuple:
    """An active user's row. With no `password` (a hash) it is one no login matches,
    Django's unusable password "!"; an operator is staff and superuser."""
    email = f"{username}@example.com"
    password = password or UNUSABLE_PASSWORD_PREFIX
    return (
        user_id,
        password,
        None,
        operator,
        username,
        first_name,
        last_name,
        email,
        operator,
        True,
        joined_at,
    )


def users_copy(*, ctx: SeedContext, rows: Iterable[tuple], count_as: str) -> int:
    """Write `user_row`s with COPY (`copy_rows`), counted as `count_as`."""
    return copy_rows(ctx=ctx, model=User, count_as=count_as, columns=USER_COLUMNS, rows=rows)
