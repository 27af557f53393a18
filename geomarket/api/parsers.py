"""The one JSON parser for request bodies: DRF's, with a bound on nesting.

Python's decoder recurses once per nested array or object, so a body of a few thousand
`[` raises `RecursionError`, which no parser or view expects. No body the API takes is
nested deeper than 6 levels (a MultiPolygon inside an object inside an object), so a
body nested deeper than `MAX_JSON_DEPTH` is refused as malformed, and the decoder's own
recursion limit, reached only far beyond it, is refused the same way.
"""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 64
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels."


def _nested_deeper_than(data: Any, limit: int) -> bool:
    # Level by level, without recursion: the children of each level's containers.
    level = [data]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, (list, dict))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, (list, dict)) for item in level)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if _nested_deeper_than(data, MAX_JSON_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
