"""Errors in the contract's shapes, the schema and the offline docs page."""

import json

import pytest
from django.contrib.staticfiles import finders
from drf_spectacular.validation import validate_schema

from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"


def test_schema_is_valid_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)
    assert "/api/v1/auth/register/" in schema["paths"]
    assert "/api/v1/auth/me/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/delivery/eta/"]
    assert "get" in schema["paths"]["/healthz"]


def test_docs_page_uses_only_local_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn" not in page.lower()
    bundle = "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert f"/static/{bundle}" in page
    assert finders.find(bundle) is not None


def test_malformed_json_is_400_with_detail(client):
    response = client.post(TOKEN, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_wrong_content_type_is_415_with_detail(client):
    response = client.post(TOKEN, data="username=a&password=b", content_type="text/plain")
    assert response.status_code == 415
    assert set(response.json()) == {"detail"}


def test_over_large_body_is_413_with_detail(client, settings):
    body = json.dumps({"username": "x" * (settings.REQUEST_BODY_MAX_BYTES + 1), "password": "p"})
    response = client.post(TOKEN, data=body, content_type="application/json")
    assert response.status_code == 413
    assert "exceeds" in response.json()["detail"]


def test_unknown_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_wrong_method_is_405_with_detail(client):
    response = client.get(TOKEN)
    assert response.status_code == 405
    assert set(response.json()) == {"detail"}


def test_admin_login_page_renders(client):
    assert client.get("/admin/login/").status_code == 200


def test_a_public_read_answers_head_and_options_as_it_answers_get(client):
    """HEAD and OPTIONS are reads: what anyone may GET, anyone may HEAD and OPTIONS, and
    only writes ask who is calling."""
    shop = factories.merchant()
    product = factories.product(merchant=shop)
    factories.zone(merchant=shop)
    for url, write in (
        ("/api/v1/categories/", client.post),
        ("/api/v1/products/", client.post),
        (f"/api/v1/products/{product.pk}/", client.patch),
        ("/api/v1/merchants/", client.post),
        (f"/api/v1/merchants/{shop.pk}/", client.patch),
        (f"/api/v1/merchants/{shop.pk}/delivery-zones/", client.post),
    ):
        assert client.get(url).status_code == 200, url
        assert client.head(url).status_code == 200, url
        assert client.options(url).status_code == 200, url
        assert write(url, data={}, content_type="application/json").status_code == 401, url
