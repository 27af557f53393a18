"""DRF's token authentication: its rules, read once; its lookup, compiled once.

The event-loop lane answers before Django and DRF run, yet must name the same token
DRF would look up, or refuse the same headers. It does not restate DRF's rules (the
keyword, its case, how the header is split and decoded): it runs
`TokenAuthentication.authenticate` itself, stopping where DRF would query the database.

Every authenticated request through Django looks its token up. DRF builds and compiles
that queryset (`select_related("user").get(key=...)`) per request, several times the
CPU of the statement itself; `TokenAuthentication` here runs the same statement,
compiled once and prepared on each connection (PostgreSQL planned it anew each time, in
about a third of a millisecond), and builds the same token and user.

A view that reads one row it does not need the caller for (an order's merchant, zone and
products) can have it read by the token's own statement (`read_with_token`): one round
trip where the lookup and the read took two. DRF still decides, from the same token row,
who the caller is; the row read along is the view's only once it does.
"""

import functools
from types import SimpleNamespace

from django.db import DatabaseError, connections
from django.db.models import F
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed

from geomarket.accounts.roles import profile_id_paths, remember_profile_ids
from geomarket.sql import CompiledQuery


class _KeyOnly(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> str:
        return key


_PARSER = _KeyOnly()


def token_key(authorization: bytes) -> str | None:
    """The key `TokenAuthentication` would look up for this `Authorization` header, or
    None when it would look up none: another scheme, no header, or a header it refuses."""
    # `get_authorization_header` reads only `request.headers`.
    request = SimpleNamespace(headers={"authorization": authorization})
    try:
        return _PARSER.authenticate(request)
    except AuthenticationFailed:
        return None


# Stands in for the key in the compiled lookup: never a real key (keys are hex digits).
_KEY_STAND_IN = "\x00key"


class _TokenLookup:
    """`model.objects.select_related("user").get(key=...)`, compiled once: the token with
    its user in its cache, as the queryset builds them, or None."""

    def __init__(self, model):
        # The user's profile ids come along (two LEFT JOINs on unique keys): an owner's
        # permission checks would otherwise read them in a statement of their own.
        profiles = {f"_profile_{name}": F(path) for name, path in profile_id_paths("user").items()}
        queryset = (
            model.objects.select_related("user").filter(key=_KEY_STAND_IN).annotate(**profiles)
        )
        compiler = queryset.query.get_compiler(using=queryset.db)
        compiler.setup_query()
        if compiler.get_converters([column for column, _, _ in compiler.select]):
            raise TypeError(f"{model.__name__}: a column needs conversion; not compiled.")
        token_info = compiler.klass_info
        (user_info,) = token_info["related_klass_infos"]
        self.db = queryset.db
        self.compiled = CompiledQuery(queryset, slots={"key": _KEY_STAND_IN})
        # Its text with the key named, for statements that read a companion beside it.
        self.named_sql = self.compiled.named_sql()
        self.width = len(compiler.select)
        self.token = self._part(compiler, token_info)
        self.user = self._part(compiler, user_info)
        self.setters = user_info["local_setter"], user_info["remote_setter"]
        self.profiles = {
            name.removeprefix("_profile_"): compiler.annotation_col_map[name] for name in profiles
        }

    def _fetch(self, sql: str, params) -> tuple | None:
        with connections[self.db].prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def _fetch_with(self, key: str, companion: "TokenCompanion") -> tuple | None:
        """The token's row, with the companion's after its own columns (a flag, then its
        columns: NULLs and a false flag where it has no row)."""
        if "key" in companion.params:
            raise ValueError("a companion read names no parameter `key`: the token's")
        sql = _with_companion(self.named_sql, companion.sql)
        connection = connections[self.db]
        try:
            row = self._fetch(sql, {**companion.params, "key": key})
        except DatabaseError:
            # The companion's fault is its caller's to meet, where it reads it alone;
            # the caller is looked up as if it had come alone.
            if connection.in_atomic_block:
                raise
            return self._fetch(self.compiled.sql, self.compiled.params(key=key))
        if row is not None:
            width = self.width
            companion.row = tuple(row[width + 1 :]) if row[width] else None
            companion.read = True
            row = row[:width]
        return row

    @staticmethod
    def _part(compiler, info) -> tuple:
        positions = info["select_fields"]
        names = [compiler.select[position][0].target.attname for position in positions]
        return info["model"], names, positions[0], positions[-1] + 1

    def __call__(self, key: str, companion: "TokenCompanion | None" = None):
        if companion is None:
            row = self._fetch(self.compiled.sql, self.compiled.params(key=key))
        else:
            row = self._fetch_with(key, companion)
        if row is None:
            return None
        model, names, start, end = self.token
        token = model.from_db(self.db, names, row[start:end])
        model, names, start, end = self.user
        user = model.from_db(self.db, names, row[start:end])
        local_setter, remote_setter = self.setters
        local_setter(token, user)
        remote_setter(user, token)
        remember_profile_ids(user, {name: row[at] for name, at in self.profiles.items()})
        return token


@functools.cache
def _lookup(model) -> _TokenLookup:
    return _TokenLookup(model)


@functools.lru_cache(maxsize=64)
def _with_companion(token_sql: str, companion_sql: str) -> str:
    # The companion does not depend on the token: PostgreSQL reads it once, beside the
    # token's row (one at most, by its unique key).
    return (
        f"SELECT token.*, companion.* FROM ({token_sql}) token"  # noqa: S608 - statements
        f" LEFT JOIN LATERAL (SELECT true AS found, c.* FROM ({companion_sql}) c) companion"
        " ON true"
    )


class TokenCompanion:
    """A read of at most one row, in psycopg's `%(name)s` style, sent in the statement
    that looks the request's token up (`read_with_token`). Once the request is
    authenticated, `read` tells whether it was, and `row` is its row (None: it had none);
    when it was not (no token, a session, a token refused), the caller reads it itself."""

    __slots__ = ("params", "read", "row", "sql")

    def __init__(self, sql: str, params: dict):
        self.sql = sql
        self.params = params
        self.read = False
        self.row: tuple | None = None


_COMPANION = "_token_companion"


def read_with_token(request, *, sql: str, params: dict) -> TokenCompanion:
    """Have the read `sql` made by the statement that looks up the token of `request` (a
    DRF request not authenticated yet), if DRF authenticates it by one: see
    `TokenCompanion`. The read must not depend on who the caller is; it is made before
    DRF decides, and its row is the caller's only if DRF lets the request in."""
    companion = TokenCompanion(sql, params)
    setattr(request, _COMPANION, companion)
    return companion


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's `TokenAuthentication`, whose token lookup is compiled once, and which reads
    a view's companion read (`read_with_token`) in the same statement."""

    companion: TokenCompanion | None = None

    def authenticate(self, request):
        # DRF makes an authenticator per request, so the companion is this request's.
        self.companion = request.__dict__.pop(_COMPANION, None)
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        companion, self.companion = self.companion, None
        token = _lookup(self.get_model())(key, companion)
        if token is None or not token.user.is_active:
            if companion is not None:
                # A refused request's read is no one's.
                companion.read, companion.row = False, None
            # DRF's own lookup refuses it, in its own words.
            return super().authenticate_credentials(key)
        return (token.user, token)
