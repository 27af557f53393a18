"""One exception handler for every API view, producing the contract's error shapes.

- validation errors: 400 `{"field": [...], "non_field_errors": [...]}`
- everything else: `{"detail": "..."}` with the status, plus `code` for domain errors
- throttling adds `retry_after` and a `Retry-After` header
- database and cache outages become 503, never a 500 with a traceback
- always JSON, whatever format the request asked for
"""

import logging
import math
import re

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from geomarket.errors import DomainError

logger = logging.getLogger(__name__)

# A lone surrogate is valid JSON (`"\ud800"`) but no text UTF-8 can carry: an error that
# echoes its input (a choice's `"..." is not a valid choice.`) could not be rendered.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(data):
    """`data` with each surrogate in its texts (keys too) replaced by U+FFFD; a text
    without one is kept as it is (an `ErrorDetail` keeps its code)."""
    if isinstance(data, str):
        return _SURROGATE.sub("\ufffd", data) if _SURROGATE.search(data) else data
    if isinstance(data, dict):
        return {_encodable(key): _encodable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_encodable(item) for item in data]
    return data


def _validation_payload(error: DjangoValidationError) -> dict:
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
            for field, messages in error.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


def _over_a_limit(exc: OperationalError) -> bool:
    """Whether PostgreSQL refused the statement for its size (SQLSTATE class 54, "program
    limit exceeded": a text past a search vector's 1 MB, an index row past its page): the
    request's doing, which a retry meets again, not an outage to wait out (a 503)."""
    return (getattr(exc.__cause__, "sqlstate", None) or "").startswith("54")


def exception_handler(exc, context):
    response = _error_response(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if request is not None:
        # An error keeps the contract's JSON shape whatever representation was asked
        # for or negotiated: as CSV, YAML (the OpenAPI document's first renderer) or
        # GeoJSON, `{"detail": ...}` came out as a table or as ErrorDetail mappings.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    response.data = _encodable(response.data)
    return response


def _error_response(exc, context):
    if isinstance(exc, DomainError):
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            field = exc.field or api_settings.NON_FIELD_ERRORS_KEY
            return Response({field: [exc.message]}, status=exc.status_code)
        body = {"detail": exc.message, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_payload(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, OperationalError) and _over_a_limit(exc):
        logger.warning("a statement refused for its size: %s", exc)
        return Response(
            {api_settings.NON_FIELD_ERRORS_KEY: ["A value is too large to be stored."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s: %s", exc.__class__.__name__, exc)
        return Response(
            {"detail": "The database is unavailable; try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error while serving a request: %s", exc)
        return Response(
            {"detail": "The request conflicts with existing data; nothing was changed."},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DataError):
        return Response(
            {api_settings.NON_FIELD_ERRORS_KEY: ["A value is out of range or malformed."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, DatabaseError):
        logger.exception("database error while serving a request")
        return Response(
            {"detail": "The request could not be stored; nothing was changed."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.Throttled):
        retry_after = math.ceil(exc.wait) if exc.wait is not None else 60
        response.data = {"detail": "Request was throttled.", "retry_after": retry_after}
        response["Retry-After"] = str(retry_after)
    elif isinstance(response.data, list):
        response.data = {api_settings.NON_FIELD_ERRORS_KEY: response.data}
    return response
