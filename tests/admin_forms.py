"""Submitting the admin's own forms as a browser would: every field the page renders,
with the value it renders, then the test's changes."""

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    """The fields of the form with id `form_id`, as a browser would submit them unchanged."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
            return
        if not self.inside or ("name" not in attrs and tag != "option"):
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.fields.append((attrs["name"], attrs.get("value") or default))
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "option" and self._select is not None and "selected" in attrs:
            self.fields.append((self._select, attrs.get("value", "")))
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self._text = []

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The HTML parser drops the newline that follows <textarea>, as browsers do.
            self.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)


def admin_form(client, url: str, form_id: str) -> dict[str, str | list[str]]:
    """The fields of the admin form at `url`, as its page renders them."""
    page = client.get(url)
    assert page.status_code == 200, url
    parser = _FormFields(form_id)
    parser.feed(page.content.decode())
    assert parser.fields, f"no form {form_id!r} at {url}"
    data: dict[str, str | list[str]] = {}
    for name, value in parser.fields:
        if name in data:
            previous = data[name]
            data[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[name] = value
    return data


def submit(client, url: str, form_id: str, changes: dict, *, remove=()) -> object:
    """POST the admin form at `url` with `changes` applied and the `remove`d fields left
    out (an unticked checkbox); the admin answers a saved form with a redirect."""
    data = admin_form(client, url, form_id)
    for name in remove:
        data.pop(name, None)
    data.update(changes)
    data.setdefault("_save", "Save")
    return client.post(url, data)
