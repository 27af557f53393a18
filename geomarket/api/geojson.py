"""GeoJSON FeatureCollections (RFC 7946) of the answers that are lists of places, for GIS
clients (QGIS, GDAL, Leaflet, MapLibre), on `Accept: application/geo+json` or
`?format=geojson`.

A view opts in with `GeoJSONAnswers` and names, in a `Features`, where each result keeps
its geometry and its id. The collection is derived from the plain answer itself, after
the view made it (cached or not, rendered by Python or by PostgreSQL): one Feature per
result, its geometry and `id` taken from the result, the result's other fields as its
`properties`. Members of the plain answer beside `results` (a page's `count`, `next`, ...)
stay members of the collection. There is no second rendering of any field to keep equal.
"""

import json
from dataclasses import dataclass

from django.http import HttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from geomarket.api.responses import json_bytes

GEOJSON = "application/geo+json"


class GeoJSONRenderer(BaseRenderer):
    """Content negotiation's name for GeoJSON (`Accept` or `?format=geojson`); the answer
    itself is made by `GeoJSONAnswers` from the plain one."""

    media_type = GEOJSON
    format = "geojson"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only errors reach here (`GeoJSONAnswers` turns every 2xx into a collection):
        # they keep the contract's JSON shape.
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return JSONRenderer().render(data, "application/json", renderer_context)


@dataclass(frozen=True)
class Features:
    # Dotted paths into a result: its GeoJSON geometry, and its id.
    geometry: str
    id: str = "id"


def _at(result: dict, path: str):
    for key in path.split("."):
        result = result[key]
    return result


def feature(result: dict, features: Features) -> dict:
    """The result as a Feature: a top-level geometry or id moves out of the properties;
    one nested in another field (a product's merchant's point) stays where it is too."""
    properties = {
        key: value for key, value in result.items() if key not in (features.geometry, features.id)
    }
    return {
        "type": "Feature",
        "id": _at(result, features.id),
        "geometry": _at(result, features.geometry),
        "properties": properties,
    }


def feature_collection(answer: dict, features: Features) -> dict:
    """The plain answer `{..., "results": [...]}` as a FeatureCollection."""
    members = {key: value for key, value in answer.items() if key != "results"}
    return {
        "type": "FeatureCollection",
        **members,
        "features": [feature(result, features) for result in answer["results"]],
    }


def wants_geojson(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == GeoJSONRenderer.format


class FormatFirst(DefaultContentNegotiation):
    """`?format=` names the answer's format whatever `Accept` says: GIS clients send their
    own `Accept` (GDAL's lists neither JSON nor GeoJSON first), and a URL must be enough
    to give them a collection. An unknown format is still a 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        chosen = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if chosen:
            renderer = self.filter_renderers(renderers, chosen)[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class GeoJSONAnswers:
    """An `APIView` mixin: its successful answers become FeatureCollections when the
    client asks for GeoJSON. They are never filed in the event loop's front cache nor
    taught to its routes (no `answer_versions`), which answer plain JSON only."""

    renderer_classes = [JSONRenderer, GeoJSONRenderer]
    content_negotiation_class = FormatFirst
    features: Features

    def finalize_response(self, request, response, *args, **kwargs):
        if request.method == "GET" and wants_geojson(request) and 200 <= response.status_code < 300:
            answer = (
                response.data if isinstance(response, Response) else json.loads(response.content)
            )
            collection = HttpResponse(
                json_bytes(feature_collection(answer, self.features)), content_type=GEOJSON
            )
            if "X-Cache" in response:
                collection["X-Cache"] = response["X-Cache"]
            response = collection
        return super().finalize_response(request, response, *args, **kwargs)


# The OpenAPI schema of a collection (RFC 7946, section 3.3), for the geo+json answers.
FEATURE_COLLECTION_SCHEMA = {
    "type": "object",
    "description": (
        "An RFC 7946 FeatureCollection: one Feature per result of the plain answer, its "
        "geometry the result's place (a merchant's point, a zone's area), its `id` the "
        "result's, the result's other fields its `properties`. Members of the plain answer "
        "beside `results` (a page's `count`, `next`, ...) are members of the collection."
    ),
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "id": {"type": "integer"},
                    "geometry": {"type": "object", "description": "A GeoJSON geometry."},
                    "properties": {"type": "object"},
                },
            },
        },
    },
}


def feature_collection_schemas(result, generator, request, public):
    """drf-spectacular post-processing: a geo+json answer is a FeatureCollection, not the
    plain answer's shape that every renderer of a view is given at first."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if GEOJSON in content and code.startswith("2"):
                    schemas["FeatureCollection"] = FEATURE_COLLECTION_SCHEMA
                    content[GEOJSON] = {
                        "schema": {"$ref": "#/components/schemas/FeatureCollection"}
                    }
    return result
