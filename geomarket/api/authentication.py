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
"""

import functools
from types import SimpleNamespace

from django.db import connections
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
        self.token = self._part(compiler, token_info)
        self.user = self._part(compiler, user_info)
        self.setters = user_info["local_setter"], user_info["remote_setter"]
        self.profiles = {
            name.removeprefix("_profile_"): compiler.annotation_col_map[name] for name in profiles
        }

    @staticmethod
    def _part(compiler, info) -> tuple:
        positions = info["select_fields"]
        names = [compiler.select[position][0].target.attname for position in positions]
        return info["model"], names, positions[0], positions[-1] + 1

    def __call__(self, key: str):
        with connections[self.db].prepared_cursor() as cursor:
            cursor.execute(self.compiled.sql, self.compiled.params(key=key))
            row = cursor.fetchone()
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


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's `TokenAuthentication`, whose token lookup is compiled once."""

    def authenticate_credentials(self, key):
        token = _lookup(self.get_model())(key)
        if token is None or not token.user.is_active:
            # DRF's own lookup refuses it, in its own words.
            return super().authenticate_credentials(key)
        return (token.user, token)
