"""The console's refusals in the contract's shape (`{"detail": ...}`), never an empty
body or Django's HTML page."""

import pytest
from django.test import Client

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/console/", "/console/data/", "/console/couriers/stream/"])
def test_a_write_to_a_console_read_is_a_405_with_detail(path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.user(is_staff=True))
    answer = client.post(path)
    assert answer.status_code == 405
    assert answer.json() == {"detail": 'Method "POST" not allowed.'}
    assert answer["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/console/", "/console/data/"])
def test_a_head_of_a_console_read_answers_its_gets_headers(client, path):
    client.force_login(factories.user(is_staff=True))
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head["Content-Type"] == get["Content-Type"]
    assert head.content == b""


def test_a_method_the_sign_in_page_has_not_is_a_405_with_detail(client):
    answer = client.delete("/console/login/")
    assert answer.status_code == 405
    assert answer.json() == {"detail": 'Method "DELETE" not allowed.'}
    assert "POST" in answer["Allow"]


def test_a_sign_in_without_its_csrf_token_is_a_403_with_detail():
    answer = Client(enforce_csrf_checks=True).post(
        "/console/login/", {"username": "someone", "password": "pw-Secret-123"}
    )
    assert answer.status_code == 403
    assert answer.json() == {"detail": "CSRF Failed: CSRF cookie not set."}


def test_a_customer_is_told_whom_the_console_is_for(client):
    client.force_login(factories.user())
    answer = client.get("/console/")
    assert answer.status_code == 403
    assert answer.json() == {"detail": "The console is for operators and merchant owners."}


def test_a_signed_in_customer_gets_the_sign_in_form_to_sign_in_anew(client):
    client.force_login(factories.user())
    answer = client.get("/console/login/")
    assert answer.status_code == 200
    assert 'name="password"' in answer.content.decode()
