import csv
import io
import re

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer

from geomarket.api.fields import single_value


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, but a `format` that no renderer of the view has is a 406 naming
    `format`, not DRF's 404: a 404 suits a format suffix in the path (a URL that does not
    exist), while the query parameter asks for a representation the view cannot give, as
    an `Accept` nothing renders does. A `format` given twice is a 400 naming it, as any
    parameter that takes one value: DRF reads its last copy, and `?format=csv&format=json`
    would be answered in JSON with nothing said."""

    def named_format(self, request, format_suffix=None) -> str | None:
        """The format the path's suffix or the query's `format` names, if any."""
        return format_suffix or single_value(
            request.query_params, self.settings.URL_FORMAT_OVERRIDE
        )

    def select_renderer(self, request, renderers, format_suffix=None):
        self.named_format(request, format_suffix)
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers, format):
        named = [renderer for renderer in renderers if renderer.format == format]
        if not named:
            formats = ", ".join(dict.fromkeys(renderer.format for renderer in renderers))
            raise NotAcceptable(
                f"`{self.settings.URL_FORMAT_OVERRIDE}` names no format this endpoint "
                f"answers: {formats}.",
                available_renderers=renderers,
            )
        return named


class ErrorsInJson(DefaultContentNegotiation):
    """For a view that answers its own media type itself (a vector tile, an event
    stream) and renders only its errors: those are JSON whatever the client accepts.
    DRF's negotiation answered 406 to a client accepting only the view's own type
    (a map library asks for `application/x-protobuf` or the tile's type)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


# What a spreadsheet opening the file would run as a formula (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The numbers the reports render as text (money, shares): a leading minus is a number.
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value):
    """`value` as a cell: a text a spreadsheet would run as a formula (a merchant named
    `=HYPERLINK(...)`) behind a `'`, which spreadsheets show as text; anything else as
    in JSON."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class CSVRenderer(BaseRenderer):
    """Rows of a report as CSV: a header line, then the values as in JSON (but a text
    a spreadsheet would run as a formula, `csv_cell`).

    A list renders as one table. An object of lists (a combined report) renders each
    list as a section, its name on a line of its own, sections separated by a blank line.
    Errors never come here: report views answer them as JSON.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        view = (renderer_context or {}).get("view")
        columns = getattr(view, "csv_columns", None)
        out = io.StringIO()
        if isinstance(data, list):
            self._table(out, data, columns)
        else:
            for index, (name, rows) in enumerate(data.items()):
                if index:
                    out.write("\r\n")
                out.write(f"{name}\r\n")
                self._table(out, rows, (columns or {}).get(name))
        return out.getvalue().encode(self.charset)

    @staticmethod
    def _table(out, rows: list[dict], columns: list[str] | None) -> None:
        """The header comes from the view's declared columns, so an empty report is
        still a valid CSV document with its header line."""
        fieldnames = columns or (list(rows[0]) if rows else [])
        writer = csv.DictWriter(out, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows)
