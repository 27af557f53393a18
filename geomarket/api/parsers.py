"""The one JSON parser for request bodies: DRF's, with a bound on nesting.

Python's decoder recurses once per nested array or object, so a body of a few thousand
`[` raises `RecursionError`, which no parser or view expects. No body the API takes is
nested deeper than 6 levels (a MultiPolygon inside an object inside an object), so a
body nested deeper than `MAX_JSON_DEPTH` is refused as malformed, and the decoder's own
recursion limit, reached only far beyond it, is refused the same way.
"""

import codecs
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

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
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return json_text_data(text, strict=self.strict)


def json_text_data(text: str, *, strict: bool = parsers.JSONParser.strict):
    """The data of a JSON body's text, as `JSONParser` reads it (the event-loop lane reads
    bodies with it too): constants such as NaN refused when `strict`, nesting bounded."""
    try:
        data = json.loads(text, parse_constant=json.strict_constant if strict else None)
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    if _nested_deeper_than(data, MAX_JSON_DEPTH):
        raise ParseError(TOO_DEEP)
    return data
