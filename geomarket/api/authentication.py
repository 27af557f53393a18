"""The API token a request's `Authorization` header carries, read by DRF's own rules.

The event-loop lane answers before Django and DRF run, yet must name the same token
DRF would look up, or refuse the same headers. It does not restate DRF's rules (the
keyword, its case, how the header is split and decoded): it runs
`TokenAuthentication.authenticate` itself, stopping where DRF would query the database.
"""

from types import SimpleNamespace

from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


class _KeyOnly(TokenAuthentication):
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
