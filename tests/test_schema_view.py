"""The OpenAPI document is built once per process and format, and served the same."""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from geomarket.api.schema_view import SchemaView

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(monkeypatch):
    monkeypatch.setattr(SchemaView, "_rendered", {})
    calls = []
    get_schema = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        calls.append(1)
        return get_schema(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    return calls


def test_the_document_is_built_once_per_format_and_served_the_same(client, built):
    as_json = {"HTTP_ACCEPT": "application/vnd.oai.openapi+json"}
    first, second = client.get("/api/schema/", **as_json), client.get("/api/schema/", **as_json)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first["Content-Type"] == second["Content-Type"]
    assert first["Content-Disposition"] == second["Content-Disposition"]
    assert "/api/v1/products/nearby/" in json.loads(second.content)["paths"]
    assert len(built) == 1
    yaml_first, yaml_second = client.get("/api/schema/"), client.get("/api/schema/")
    assert yaml_first.content == yaml_second.content
    assert yaml_first["Content-Type"].startswith("application/vnd.oai.openapi")
    assert len(built) == 2


def test_a_query_naming_a_language_or_version_is_built_each_time(client, built):
    for _ in range(2):
        assert client.get("/api/schema/", {"lang": "en"}).status_code == 200
    assert len(built) == 2
    assert SchemaView._rendered == {}


def test_requests_arriving_together_build_it_once(built):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.test import Client

    together = Barrier(6)

    def fetch(_):
        client = Client()
        together.wait()
        response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        return response.status_code, response.content

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(fetch, range(6)))
    assert {status for status, _ in answers} == {200}
    assert len({content for _, content in answers}) == 1
    assert len(built) == 1


@pytest.mark.parametrize(
    ("query", "headers", "code", "field"),
    [
        ("?format=bogus", {}, 406, "detail"),
        ("?format=json&format=yaml", {}, 400, "format"),
        ("", {"HTTP_ACCEPT": "application/xml"}, 406, "detail"),
    ],
)
def test_its_errors_are_json_in_the_contracts_shape(client, query, headers, code, field):
    # The document's first renderer is YAML: its errors came out as YAML mappings of
    # DRF's ErrorDetail ("detail: {string: ..., code: not_acceptable}").
    response = client.get(f"/api/schema/{query}", **headers)
    assert response.status_code == code
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert list(body) == [field]
    assert isinstance(body[field], str if field == "detail" else list)
