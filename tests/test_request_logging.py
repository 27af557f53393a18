"""Django's request log: the server's failures, not the clients' mistakes."""

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.log import log_response

pytestmark = pytest.mark.django_db


def request_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "django.request"]


def test_answers_refusing_a_client_are_not_logged(api_client, caplog):
    caplog.set_level(logging.DEBUG, logger="root")
    refused = [
        api_client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Token nobody-holds-this"),
        api_client.get("/api/v1/search/products/", {"sort": "cheapest"}),
        api_client.get("/api/v1/products/999999999/"),
    ]
    assert [answer.status_code for answer in refused] == [401, 400, 404]
    assert request_records(caplog) == []


def test_server_errors_are_logged(caplog):
    request = RequestFactory().get("/api/v1/orders/")
    log_response(
        "Internal Server Error: %s",
        request.path,
        response=HttpResponse(status=500),
        request=request,
    )
    [record] = request_records(caplog)
    assert record.levelno == logging.ERROR
