import hashlib

from django.http import HttpResponse
from django.utils.cache import get_conditional_response
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from geomarket.answer_cache import Namespace, cached_answer
from geomarket.api.renderers import ErrorsInJson
from geomarket.errors import NotFound
from merchants.tiles import EXTENT, LAYERS, MAX_ZOOM, tile, tile_in_range

MVT_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"


def _etag(body: bytes) -> str:
    # From the bytes, which the cached copy under the current versions shares: a write or
    # a shop opening changes the tile, and only then the tag. SHA-256, which the CPU
    # computes in hardware, takes half BLAKE2b's time over a tile of hundreds of kB.
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class TileApi(APIView):
    # The tiles are the same for everyone: no caller is looked up.
    authentication_classes = ()
    permission_classes = [AllowAny]
    content_negotiation_class = ErrorsInJson

    def dispatch(self, request, *args, **kwargs):
        """A GET is answered from Django's own request: the view reads no body, no caller
        and no `Accept`, and DRF's request, its negotiation and the rest of its setup
        cost about a millisecond, a cached tile's whole answer. Its errors still go
        through DRF, as every view's do (JSON, whatever the client accepts); any other
        method is DRF's."""
        if request.method != "GET":
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs, self.request = args, kwargs, request
        self.headers = self.default_response_headers
        try:
            response = self.get(request, **kwargs)
        except Exception as exc:
            self.request = self.initialize_request(request, *args, **kwargs)
            response = self.handle_exception(exc)
        return self.finalize_response(self.request, response, *args, **kwargs)

    @extend_schema(
        operation_id="tiles_retrieve",
        summary="A Mapbox Vector Tile of active merchants or their active delivery zones",
        description=(
            "Layers: `merchants` (points; id, name, open_now) and `zones` (polygons; id, "
            f"merchant_id, delivery_fee as a decimal string). Web Mercator tiles, z 0..{MAX_ZOOM}, "
            f"extent {EXTENT}. An empty tile is a 204. The `ETag` changes when the tile does; "
            "send it back in `If-None-Match` for a 304."
        ),
        responses={
            (200, MVT_CONTENT_TYPE): OpenApiTypes.BINARY,
            204: OpenApiResponse(description="No feature in this tile"),
            304: OpenApiResponse(description="The tile of `If-None-Match`, unchanged"),
            404: OpenApiResponse(description="Unknown layer, or no such tile"),
        },
        parameters=[
            OpenApiParameter("layer", str, OpenApiParameter.PATH, enum=list(LAYERS)),
            OpenApiParameter(
                "z",
                {"type": "integer", "minimum": 0, "maximum": MAX_ZOOM},
                OpenApiParameter.PATH,
                description=f"0..{MAX_ZOOM}",
            ),
            *(
                OpenApiParameter(
                    axis,
                    {"type": "integer", "minimum": 0, "maximum": 2**MAX_ZOOM - 1},
                    OpenApiParameter.PATH,
                    description="0..2^z - 1",
                )
                for axis in ("x", "y")
            ),
        ],
        tags=["maps"],
    )
    def get(self, request, layer: str, z: int, x: int, y: int):
        if layer not in LAYERS:
            raise NotFound(f"Unknown layer {layer!r}: the layers are {', '.join(LAYERS)}.")
        if not tile_in_range(z=z, x=x, y=y):
            raise NotFound(f"No tile {z}/{x}/{y}: z runs 0..{MAX_ZOOM}, x and y 0..2^z - 1.")
        answer = cached_answer(
            name=f"tile-{layer}",
            namespaces=(Namespace.MERCHANTS,),
            params={"z": z, "x": x, "y": y},
            compute=lambda: tile(layer=layer, z=z, x=x, y=y),
        )
        etag = _etag(answer.body)
        # Django's reading of `If-None-Match`: compared weakly (RFC 9110, 13.1.2), as a
        # proxy that compresses the tile sends its tag back weak, and `*`. Its 304 has no
        # body's metadata: a cache refreshing its copy from a 304 takes the 304's headers.
        not_modified = get_conditional_response(request, etag=etag)
        if not_modified is not None:
            response = not_modified
        elif not answer.body:
            response = HttpResponse(status=204)
            del response["Content-Type"]
        else:
            response = HttpResponse(answer.body, content_type=MVT_CONTENT_TYPE)
        response["ETag"] = etag
        # Browsers keep the tile and ask each time whether it changed: a 304 is one read.
        response["Cache-Control"] = "no-cache"
        response["X-Cache"] = "HIT" if answer.hit else "MISS"
        return response
