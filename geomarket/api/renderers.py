import csv
import io

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Rows of a report as CSV: a header line, then the values exactly as in JSON.

    A list renders as one table. An object of lists (a combined report) renders each
    list as a section, its name on a line of its own, sections separated by a blank line.
    Errors (an object of messages) render as JSON would have them, one per line.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        if isinstance(data, list):
            self._table(out, data)
        elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            for index, (name, rows) in enumerate(data.items()):
                if index:
                    out.write("\r\n")
                out.write(f"{name}\r\n")
                self._table(out, rows)
        else:
            writer = csv.writer(out)
            for key, value in (data or {}).items():
                writer.writerow([key, value])
        return out.getvalue().encode(self.charset)

    @staticmethod
    def _table(out, rows: list[dict]) -> None:
        if not rows:
            return
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
