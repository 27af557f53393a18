"""OpenAPI for the two plain Django views that drf-spectacular cannot see."""

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
_FIELD_ERRORS = {"type": "object", "additionalProperties": {"type": "array", "items": {}}}
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
