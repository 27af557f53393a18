"""The OpenAPI schema: what drf-spectacular reads from the views, made to say what the
views really do, and the two plain Django views it cannot see.

Every check of the fuzz run (`tests/test_fuzz.py`) holds the API to this document: the
statuses an operation may answer, which requests it must refuse, who may call it.
"""

import re

from django.core.validators import EmailValidator, RegexValidator
from django.http import HttpRequest
from drf_spectacular import openapi
from drf_spectacular.plumbing import force_instance, get_doc
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAcceptable
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings

from geomarket.api.fields import BIGINT_MAX, FiniteFloatField, MoneyField
from geomarket.api.pagination import PAGE_PARAMETER_MAX, PageNumberPagination
from geomarket.api.paths import ID
from geomarket.api.permissions import anonymous_may_call
from geomarket.ratelimit import RATE_LIMIT_HEADERS

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
# Field errors are lists of messages, nested objects for nested fields, or a `detail`.
_FIELD_ERRORS = {"type": "object", "additionalProperties": {}}
_LAT = {"type": "number", "minimum": -90, "maximum": 90}
_LNG = {"type": "number", "minimum": -180, "maximum": 180}
_ID = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}
# `<converter:name>` in a route.
_PATH_PARAMETER = re.compile(r"<(\w+):(\w+)>")

_ERROR_STATUSES = {
    "400": ("Invalid input: field errors, or a detail for malformed bodies.", _FIELD_ERRORS),
    "401": ("Authentication is required or failed.", _ERROR),
    "403": ("The caller may not do this.", _ERROR),
    "404": ("No such object, or not one the caller may see.", _ERROR),
    "406": (
        "No type the request's `Accept` allows, or no format its `format` names, is one "
        "this operation answers in.",
        _ERROR,
    ),
    "409": ("Conflict: state, stock or idempotency key.", _ERROR),
    "413": ("The request body is too large.", _ERROR),
    "415": ("Unsupported media type.", _ERROR),
    "429": (
        "Rate limited.",
        {
            "type": "object",
            "properties": {"detail": {"type": "string"}, "retry_after": {"type": "integer"}},
        },
    ),
    "503": ("A dependency is unavailable.", _ERROR),
}


def _error_response(status: str) -> dict:
    description, schema = _ERROR_STATUSES[status]
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _with_errors(responses: dict, statuses) -> dict:
    merged = {**responses, **{s: _error_response(s) for s in statuses if s not in responses}}
    return dict(sorted(merged.items()))


def _integer_header(description: str) -> dict:
    return {
        "description": description,
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }


# What every answer of a rate-limited operation carries (`RateLimitedMixin`), and a 429
# besides.
_RATE_LIMIT_HEADERS = {
    name: _integer_header(description)
    for name, description in zip(
        RATE_LIMIT_HEADERS,
        (
            "Requests the client may make a minute.",
            "Requests the client may make now.",
            "Seconds until the client's whole budget is back.",
        ),
        strict=True,
    )
}
_RETRY_AFTER = {"Retry-After": _integer_header("Seconds until the next request may be made.")}
# Given by the server before any view reads the request (`RequestBodyLimit`).
_BEFORE_THE_VIEW = {"413"}


ETA_PATH = {
    "post": {
        "operationId": "delivery_eta_create",
        "summary": "Delivery time estimates, one per merchant, computed concurrently.",
        "tags": ["delivery"],
        "security": [{"tokenAuth": []}, {"cookieAuth": []}, {}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["destination", "merchant_ids"],
                                "not": {"required": ["order_id"]},
                                "properties": {
                                    "destination": {
                                        "type": "object",
                                        "required": ["lat", "lng"],
                                        "properties": {"lat": _LAT, "lng": _LNG},
                                    },
                                    "merchant_ids": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 50,
                                        "items": _ID,
                                    },
                                },
                            },
                            {
                                "type": "object",
                                "required": ["order_id"],
                                "not": {
                                    "anyOf": [
                                        {"required": ["destination"]},
                                        {"required": ["merchant_ids"]},
                                    ]
                                },
                                "properties": {"order_id": _ID},
                            },
                        ]
                    }
                }
            },
        },
        # A JSON body read, the database queried, the caller authenticated by DRF's classes.
        "responses": _with_errors(
            {
                "200": {
                    "description": "",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["results", "elapsed_ms"],
                                "properties": {
                                    "results": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": [
                                                "merchant_id",
                                                "distance_m",
                                                "eta_s",
                                                "provider",
                                                "degraded",
                                            ],
                                            "properties": {
                                                "merchant_id": {"type": "integer"},
                                                "distance_m": {"type": "number"},
                                                "eta_s": {"type": "integer"},
                                                "provider": {"type": "string"},
                                                "degraded": {"type": "boolean"},
                                            },
                                        },
                                    },
                                    "elapsed_ms": {"type": "number"},
                                },
                            }
                        }
                    },
                },
            },
            # 403: a session whose CSRF token is missing, as on every DRF POST.
            ("400", "401", "403", "404", "413", "415", "503"),
        ),
    }
}

HEALTHZ_PATH = {
    "get": {
        "operationId": "healthz",
        "summary": "The database, the cache and the broker, each checked with a timeout.",
        "tags": ["operations"],
        "security": [{}],
        "responses": {
            status: {
                "description": "",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "checks"],
                            "properties": {
                                "status": {"type": "string", "enum": ["ok", "error"]},
                                "checks": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "type": "string",
                                        "enum": ["ok", "error"],
                                    },
                                },
                            },
                        }
                    }
                },
            }
            for status in ("200", "503")
        },
    }
}


def add_plain_views(result, generator, request, public):
    result["paths"]["/api/v1/delivery/eta/"] = ETA_PATH
    result["paths"]["/healthz"] = HEALTHZ_PATH
    return result


def partial_nested_patches(result, generator, request, public):
    """A PATCH is partial all the way down: DRF reads the nested objects of a partial
    update (a merchant's `address`) partially too, so their fields are optional there."""
    components = result["components"]["schemas"]
    done = set()

    def partial(reference: str) -> str:
        name = reference.rsplit("/", 1)[1]
        if "properties" not in components[name]:
            return reference
        patched = name if name.startswith("Patched") else f"Patched{name}"
        if patched not in done:
            done.add(patched)
            schema = components[patched] = {**components[name]}
            schema.pop("required", None)
            schema["properties"] = {
                key: {"$ref": partial(value["$ref"])} if "$ref" in value else value
                for key, value in schema["properties"].items()
            }
        return f"#/components/schemas/{patched}"

    for path_item in result["paths"].values():
        body = path_item.get("patch", {}).get("requestBody", {})
        for media in body.get("content", {}).values():
            if "$ref" in media.get("schema", {}):
                media["schema"]["$ref"] = partial(media["schema"]["$ref"])
    return result


# DRF refuses NUL characters in every text field, and trims a text before it refuses a
# blank one: text that may not be blank holds more than whitespace.
_TEXT = "^[^\\u0000]*$"
_NON_BLANK_TEXT = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
# Validators that give a text field a pattern or format of its own.
_SPELLED = (RegexValidator, EmailValidator)

_PAGE_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_PARAMETER_MAX},
    }
    for name in (
        PageNumberPagination.page_query_param,
        PageNumberPagination.page_size_query_param,
    )
]


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with what it cannot infer derived from the same views:
    who may call an operation, which error statuses it can answer, how query parameters
    and money are read."""

    def get_description(self) -> str:
        # drf-spectacular falls back on a docstring the view inherits: a mixin's, about
        # the mixin (how GeoJSON answers are made), not about the operation. A view's
        # description is its handler's docstring or its own, or what `extend_schema` says.
        handler = getattr(self.view, self.method.lower(), None)
        own = type(self.view).__dict__.get("__doc__")
        return get_doc(handler) or (get_doc(type(self.view)) if own else "")

    def get_auth(self):
        auths = super().get_auth()
        if {} not in auths and anonymous_may_call(self.view, self.method):
            auths.append({})
        return auths

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        if self._answers_pages():
            operation["parameters"] = [*operation.get("parameters", ()), *_PAGE_PARAMETERS]
        for parameter in operation.get("parameters", ()):
            if parameter["in"] == "query" and not parameter.get("required"):
                # DRF reads an empty optional query parameter as an absent one.
                parameter["allowEmptyValue"] = True
        operation["responses"] = _with_errors(
            operation["responses"], self._error_statuses(operation)
        )
        if self._rate_limited():
            for status, response in operation["responses"].items():
                if status not in _BEFORE_THE_VIEW:
                    headers = {**_RATE_LIMIT_HEADERS, **(_RETRY_AFTER if status == "429" else {})}
                    response["headers"] = {**response.get("headers", {}), **headers}
        return operation

    def _rate_limited(self) -> bool:
        """Whether the view limits this operation's method (`RateLimitedMixin`)."""
        return bool(getattr(self.view, "rate_limits", ())) and self.method in getattr(
            self.view, "rate_limited_methods", ()
        )

    def _negotiation_refuses(self) -> bool:
        """Whether the view's content negotiation can refuse a request (a 406): asked of
        its negotiator itself, with an `Accept` and a `format` that none of the view's
        renderers serves. A view that answers its own type and renders only its errors
        (`ErrorsInJson`) never refuses."""
        asked = HttpRequest()
        asked.method = self.method
        asked.META["HTTP_ACCEPT"] = "application/x-unrenderable"
        asked.GET[api_settings.URL_FORMAT_OVERRIDE] = "unrenderable"
        negotiator = self.view.get_content_negotiator()
        try:
            negotiator.select_renderer(Request(asked), self.view.get_renderers())
        except NotAcceptable:
            return True
        return False

    def _resolve_path_parameters(self, variables):
        # drf-spectacular reads a converter of ours as a string of its pattern.
        parameters = super()._resolve_path_parameters(variables)
        ids = {
            name for converter, name in _PATH_PARAMETER.findall(self.path_regex) if converter == ID
        }
        for parameter in parameters:
            if parameter["name"] in ids:
                parameter["schema"] = dict(_ID)
        return parameters

    def _answers_pages(self) -> bool:
        """Whether the operation answers in the contract's page shape (`page_of`)."""
        if self.method != "GET":
            return False
        serializer = self.get_response_serializers()
        if isinstance(serializer, dict):
            serializer = serializer.get(200)
        fields = getattr(force_instance(serializer), "fields", {})
        return {"total_pages", "results"} <= set(fields)

    def _error_statuses(self, operation: dict) -> set[str]:
        """The error statuses the operation can answer, from what the view is made of."""
        # Every view reads the database; a caller may send a token that is not valid.
        statuses = {"503"}
        authenticators = self.view.get_authenticators()
        if authenticators:
            statuses.add("401")
        parameters = operation.get("parameters", ())
        query = {p["name"] for p in parameters if p["in"] == "query"}
        if query or "requestBody" in operation:
            statuses.add("400")
        if "requestBody" in operation:
            statuses |= {"413", "415"}
        public = {} in operation.get("security", [{}])
        csrf = any(isinstance(a, SessionAuthentication) for a in authenticators)
        if not public or (csrf and self.method not in SAFE_METHODS):
            statuses.add("403")
        # A page past the end.
        if any(p["in"] == "path" for p in parameters) or "page" in query:
            statuses.add("404")
        if self._negotiation_refuses():
            statuses.add("406")
        if self.method not in SAFE_METHODS:
            # Writes meet the state they change: transitions, stock, rows still in use.
            statuses.add("409")
        if self._rate_limited():
            statuses.add("429")
        return statuses

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not schema.keys() & {"pattern", "format", "enum", "oneOf"}
            # drf-spectacular adds those after this, and keeps a pattern given here.
            and not any(isinstance(v, _SPELLED) for v in field.validators)
        ):
            schema["pattern"] = _TEXT if field.allow_blank else _NON_BLANK_TEXT
        if isinstance(field, FiniteFloatField) and field.above is not None:
            schema["minimum"] = field.above
            schema["exclusiveMinimum"] = True
        if isinstance(field, MoneyField) and direction == "request":
            schema["pattern"] = f"^{field.pattern.pattern}$"
        if not getattr(field, "allow_empty", True) and schema.get("type") == "array":
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        return schema
