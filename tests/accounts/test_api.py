import pytest
from rest_framework.authtoken.models import Token

from tests.rows import rows

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
TOKEN = "/api/v1/auth/token/"
ME = "/api/v1/auth/me/"


def test_register_then_token_then_me(api_client):
    registered = api_client.post(
        REGISTER, {"username": "alice", "password": "Str0ng-pass-phrase", "email": "a@x.org"}
    )
    assert registered.status_code == 201
    body = registered.json()
    assert set(body) == {"id", "username", "token"}
    assert body["username"] == "alice"

    obtained = api_client.post(TOKEN, {"username": "alice", "password": "Str0ng-pass-phrase"})
    assert obtained.status_code == 200
    assert obtained.json() == {"token": body["token"]}

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = api_client.get(ME)
    assert me.status_code == 200
    assert me.json() == {
        "id": body["id"],
        "username": "alice",
        "email": "a@x.org",
        "roles": ["customer"],
        "merchant_id": None,
        "courier_id": None,
    }


def test_token_with_wrong_password_is_400_in_contract_shape(api_client, make_user):
    make_user(username="bob")
    response = api_client.post(TOKEN, {"username": "bob", "password": "wrong"})
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Unable to log in with the provided credentials."]
    }


def test_token_for_unknown_user_is_400(api_client):
    response = api_client.post(TOKEN, {"username": "ghost", "password": "whatever-1"})
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_token_missing_fields_are_field_errors(api_client):
    response = api_client.post(TOKEN, {})
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_register_duplicate_username_is_field_error(api_client, make_user, django_user_model):
    make_user(username="carol")
    before = rows(django_user_model, Token)
    response = api_client.post(REGISTER, {"username": "Carol", "password": "Str0ng-pass-phrase"})
    assert response.status_code == 400
    assert "username" in response.json()
    assert rows(django_user_model, Token) == before


def test_register_weak_password_is_field_error_and_creates_nothing(api_client, django_user_model):
    response = api_client.post(REGISTER, {"username": "dave", "password": "123"})
    assert response.status_code == 400
    assert "password" in response.json()
    assert not django_user_model.objects.filter(username="dave").exists()


def test_me_requires_authentication(api_client):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_me_with_bad_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api_client.get(ME).status_code == 401


def test_operator_has_operator_role(make_user, client_for):
    operator = make_user(is_staff=True)
    roles = client_for(operator).get(ME).json()["roles"]
    assert roles == ["customer", "operator"]
