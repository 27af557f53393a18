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

import copy
import json
from dataclasses import dataclass

from django.http import HttpResponse
from django.http.request import MediaType
from rest_framework.exceptions import NotAcceptable
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.mediatypes import _MediaType

from geomarket.api.renderers import ContentNegotiation
from geomarket.api.responses import json_bytes

GEOJSON = "application/geo+json"


class GeoJSONRenderer(BaseRenderer):
    """Content negotiation's name for GeoJSON (`Accept` or `?format=geojson`); the answer
    itself is made by `GeoJSONAnswers` from the plain one."""

    media_type = GEOJSON
    format = "geojson"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # `GeoJSONAnswers` turns every 2xx of a GET into a collection and errors are
        # rendered as JSON (`geomarket.api.exceptions`): what reaches here (OPTIONS
        # metadata) keeps its plain JSON shape.
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


class FormatFirst(ContentNegotiation):
    """`?format=` names the answer's format whatever `Accept` says: GIS clients send their
    own `Accept` (GDAL's lists neither JSON nor GeoJSON first), and a URL must be enough
    to give them a collection. An unknown format is a 406, as everywhere.

    Otherwise `Accept` decides with its quality values, which DRF's negotiation ignores:
    `application/json;q=0.5, application/geo+json` asks for GeoJSON and gets it, and a
    type given `q=0` is refused. Each renderer's type takes the `q` of the most specific
    range that matches it (RFC 9110, 12.5.1); the highest wins, then the more specific
    range, then the view's order of renderers (JSON first), as DRF orders them."""

    def select_renderer(self, request, renderers, format_suffix=None):
        chosen = self.named_format(request, format_suffix)
        if chosen:
            renderer = self.filter_renderers(renderers, chosen)[0]
            return renderer, renderer.media_type
        # DRF's reading of the header: bounded in length and in tokens.
        ranges = self._get_parsed_accept_list(request)
        best, best_rank = None, None
        for order, renderer in enumerate(renderers):
            offered = _MediaType(renderer.media_type)
            matching = [media_range for media_range in ranges if offered.match(media_range)]
            if not matching:
                continue
            closest = max(matching, key=lambda media_range: media_range.precedence)
            # Its `q` as Django reads one (absent, malformed or out of range: 1).
            rank = (MediaType(str(closest)).quality, closest.precedence, -order)
            if rank[0] > 0 and (best_rank is None or rank > best_rank):
                best, best_rank = renderer, rank
        if best is None:
            raise NotAcceptable(available_renderers=renderers)
        return best, best.media_type


class GeoJSONAnswers:
    """An `APIView` mixin: its successful answers become FeatureCollections when the
    client asks for GeoJSON. They are never filed in the event loop's front cache nor
    taught to its routes (no `answer_versions`), which answer plain JSON only."""

    renderer_classes = [JSONRenderer, GeoJSONRenderer]
    content_negotiation_class = FormatFirst
    features: Features

    def finalize_response(self, request, response, *args, **kwargs):
        # HEAD too: its headers are GET's (RFC 9110, 9.3.2), a collection's type and length.
        answered = request.method in ("GET", "HEAD") and 200 <= response.status_code < 300
        if answered and wants_geojson(request):
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


def _resolved(schema: dict, schemas: dict) -> dict:
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _schema_at(item: dict, path: str, schemas: dict) -> dict:
    for key in path.split("."):
        item = _resolved(item, schemas)["properties"][key]
    return item


def _collection_schema(plain: dict, features: Features, schemas: dict) -> dict:
    """The collection made of the plain answer of schema `plain`, as `feature_collection`
    makes it: its members beside `results`, and each Feature's `id`, geometry and
    `properties` taken from the result's schema."""
    answer = _resolved(plain, schemas)
    result = _resolved(answer["properties"]["results"]["items"], schemas)
    moved = {features.geometry, features.id}
    collection = copy.deepcopy(FEATURE_COLLECTION_SCHEMA)
    members = {key: value for key, value in answer["properties"].items() if key != "results"}
    kept = collection["properties"]
    collection["properties"] = {"type": kept["type"], **members, "features": kept["features"]}
    collection["required"] += [key for key in answer.get("required", ()) if key in members]
    feature = collection["properties"]["features"]["items"]["properties"]
    feature["id"] = {**_schema_at(result, features.id, schemas)}
    feature["id"]["description"] = f"The result's `{features.id}`."
    feature["geometry"] = {**_schema_at(result, features.geometry, schemas)}
    feature["geometry"]["description"] = f"The result's `{features.geometry}`."
    feature["properties"] = {
        "type": "object",
        "properties": {k: v for k, v in result["properties"].items() if k not in moved},
        "required": [key for key in result.get("required", ()) if key not in moved],
    }
    return collection


def feature_collection_schemas(result, generator, request, public):
    """drf-spectacular post-processing: a `GET`'s geo+json answer is a FeatureCollection
    derived from its plain answer's schema and the view's `Features`, not the plain shape
    that every renderer of a view is given at first. Other methods answer JSON only."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    views = {
        (path, method.lower()): getattr(callback, "cls", None)
        for path, _, method, callback in generator.endpoints or ()
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            features = getattr(views.get((path, method)), "features", None)
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if GEOJSON not in content or not code.startswith("2"):
                    continue
                if method != "get":
                    del content[GEOJSON]
                    continue
                plain = content.get("application/json", {}).get("schema")
                if isinstance(features, Features) and plain is not None:
                    content[GEOJSON] = {"schema": _collection_schema(plain, features, schemas)}
                else:
                    schemas["FeatureCollection"] = FEATURE_COLLECTION_SCHEMA
                    content[GEOJSON] = {
                        "schema": {"$ref": "#/components/schemas/FeatureCollection"}
                    }
    return result
