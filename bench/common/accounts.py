"""Users and API tokens for the bench's and the soak's clients, written straight in SQL:
thousands of `create_user` calls would take longer than the runs they serve."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    """A client of the API: its user and that user's token."""

    user_id: int
    token: str


def numbered(prefix: str, count: int) -> list[str]:
    """`prefix001`, `prefix002`, ...: names that sort in the order they were made."""
    return [f"{prefix}{n:03d}" for n in range(1, count + 1)]


def users(
    connection,
    names: list[str],
    *,
    staff: bool = False,
    first_name: str = "Bench",
    last_name: str = "",
    email_domain: str | None = None,
) -> dict[str, int]:
    """The id of each user in `names`, created when missing (no usable password)."""
    emails = [f"{name}@{email_domain}" if email_domain else "" for name in names]
    connection.execute(
        "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined)"
        " SELECT '!', false, name, %s, %s, email, %s, true, now()"
        " FROM unnest(%s::text[], %s::text[]) AS t(name, email)"
        " ON CONFLICT (username) DO NOTHING",
        [first_name, last_name, staff, names, emails],
    )
    rows = connection.execute(
        "SELECT username, id FROM accounts_user WHERE username = ANY(%s)", [names]
    ).fetchall()
    return dict(rows)


def staff_user(connection, name: str) -> int:
    """The id of `name`, an active staff user (an operator), created when missing."""
    user_id = users(connection, [name], staff=True)[name]
    staff = connection.execute(
        "SELECT is_staff AND is_active FROM accounts_user WHERE id = %s", [user_id]
    ).fetchone()[0]
    if not staff:
        raise SystemExit(f"{name} exists in the bench database but is not an active staff user")
    return user_id


def tokens(connection, user_ids: Iterable[int]) -> dict[int, str]:
    """An API token per user (40 hex characters, like DRF's), created when missing."""
    user_ids = sorted(set(user_ids))
    connection.execute(
        "INSERT INTO authtoken_token (key, created, user_id)"
        " SELECT k, now(), u FROM unnest(%s::text[], %s::bigint[]) AS t(k, u)"
        " ON CONFLICT (user_id) DO NOTHING",
        [[secrets.token_hex(20) for _ in user_ids], user_ids],
    )
    rows = connection.execute(
        "SELECT user_id, key FROM authtoken_token WHERE user_id = ANY(%s)", [user_ids]
    ).fetchall()
    return dict(rows)
