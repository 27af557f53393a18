"""The console's sign-in page: the form's inputs as Django renders them, for an empty form
and for a refused sign-in, whose typed username never reaches another visitor's page."""

import pytest
from django.contrib.auth.forms import AuthenticationForm
from django.template import Context, Template

pytestmark = pytest.mark.django_db

LOGIN = "/console/login/"


def _rendered(form) -> list[str]:
    template = Template("{{ form.username }}\n{{ form.password }}")
    return template.render(Context({"form": form})).split("\n")


def test_the_empty_form_shows_djangos_own_inputs(client):
    page = client.get(LOGIN).content.decode()
    for html in _rendered(AuthenticationForm()):
        assert html in page
    assert "errorlist" not in page


def test_a_refused_sign_in_shows_the_error_and_keeps_the_username(client):
    refused = client.post(LOGIN, {"username": "courier-7", "password": "not-it"})
    page = refused.content.decode()
    assert refused.status_code == 200
    assert 'class="errorlist nonfield"' in page
    assert 'value="courier-7"' in page
    bound = AuthenticationForm(data={"username": "courier-7", "password": "not-it"})
    for html in _rendered(bound):
        assert html in page


def test_a_username_typed_before_never_shows_on_a_later_empty_form(client):
    client.post(LOGIN, {"username": "courier-7", "password": "not-it"})
    again = client.get(LOGIN).content.decode()
    assert "courier-7" not in again
    assert _rendered(AuthenticationForm())[0] in again


def test_the_empty_forms_inputs_are_rendered_once(client, monkeypatch):
    from django.forms.boundfield import BoundField

    client.get(LOGIN)
    rendered = []
    as_widget = BoundField.as_widget
    monkeypatch.setattr(
        BoundField,
        "as_widget",
        lambda self, *a, **k: rendered.append(self.name) or as_widget(self, *a, **k),
    )
    client.get(LOGIN)
    client.post(LOGIN, {"username": "courier-7", "password": "not-it"})
    assert rendered == ["username", "password"]
