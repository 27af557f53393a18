"""OpenAPI for the two plain Django views that drf-spectacular cannot see."""

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
# Field errors are lists of messages, nested objects for nested fields, or a `detail`.
_FIELD_ERRORS = {"type": "object", "additionalProperties": {}}
_LAT = {"type": "number", "minimum": -90, "maximum": 90}
_LNG = {"type": "number", "minimum": -180, "maximum": 180}

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
                                        "items": {"type": "integer", "minimum": 1},
                                    },
                                },
                            },
                            {
                                "type": "object",
                                "required": ["order_id"],
                                "properties": {"order_id": {"type": "integer", "minimum": 1}},
                            },
                        ]
                    }
                }
            },
        },
        "responses": {
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
            "400": {"description": "", "content": {"application/json": {"schema": _FIELD_ERRORS}}},
            "401": {"description": "", "content": {"application/json": {"schema": _ERROR}}},
            "404": {"description": "", "content": {"application/json": {"schema": _ERROR}}},
            "405": {"description": "", "content": {"application/json": {"schema": _ERROR}}},
            "415": {"description": "", "content": {"application/json": {"schema": _ERROR}}},
        },
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


_ERROR_STATUSES = {
    "400": ("Invalid input: field errors, or a detail for malformed bodies.", _FIELD_ERRORS),
    "401": ("Authentication is required or failed.", _ERROR),
    "403": ("The caller may not do this.", _ERROR),
    "404": ("No such object, or not one the caller may see.", _ERROR),
    "405": ("Method not allowed.", _ERROR),
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


def add_error_responses(result, generator, request, public):
    """Every operation can answer with the contract's error shapes; say so."""
    for path_item in result["paths"].values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, (description, schema) in _ERROR_STATUSES.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": schema}},
                    },
                )
    return result
