import pytest
from rest_framework.authtoken.models import Token

from tests.rows import rows

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
TOKEN = "/api/v1/auth/token/"
ME = "/api/v1/auth/me/"
FULLWIDTH_BOB = "\uff42\uff4f\uff42"
FULLWIDTH_FULL = "\uff46\uff55\uff4c\uff4c"


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


def test_register_with_a_null_email_is_registered_without_one(api_client, django_user_model):
    response = api_client.post(
        REGISTER, {"username": "gil", "password": "Str0ng-pass-phrase", "email": None}
    )
    assert response.status_code == 201, response.json()
    assert django_user_model.objects.get(username="gil").email == ""


def test_register_an_email_longer_than_its_column_is_a_field_error(api_client, django_user_model):
    # 259 characters, a valid address by Django's check, which passes up to 320.
    email = "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "co"
    response = api_client.post(
        REGISTER, {"username": "fay", "password": "Str0ng-pass-phrase", "email": email}
    )
    assert response.status_code == 400
    assert response.json() == {"email": ["Ensure this field has no more than 254 characters."]}
    assert not django_user_model.objects.filter(username="fay").exists()


@pytest.mark.parametrize("password", [" " * 12, "\t\n" * 6, "\u3000" * 10])
def test_register_a_password_of_whitespace_alone_is_field_error(
    api_client, django_user_model, password
):
    response = api_client.post(REGISTER, {"username": "erin", "password": password}, format="json")
    assert response.status_code == 400
    assert response.json() == {"password": ["This password is whitespace alone."]}
    assert not django_user_model.objects.filter(username="erin").exists()


def test_register_a_passphrase_with_spaces_around_and_inside_is_kept_whole(api_client):
    password = "  correct horse battery staple  "
    response = api_client.post(REGISTER, {"username": "erin", "password": password}, format="json")
    assert response.status_code == 201
    assert api_client.post(TOKEN, {"username": "erin", "password": password}).status_code == 200


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


def test_register_a_fullwidth_look_alike_of_a_taken_username_is_field_error(
    api_client, make_user, django_user_model
):
    make_user(username="bob")
    before = rows(django_user_model, Token)
    response = api_client.post(
        REGISTER, {"username": FULLWIDTH_BOB, "password": "Str0ng-pass-phrase"}
    )
    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}
    assert rows(django_user_model, Token) == before


def test_register_stores_the_username_nfkc_normalized(api_client, django_user_model):
    response = api_client.post(
        REGISTER, {"username": FULLWIDTH_FULL, "password": "Str0ng-pass-phrase"}
    )
    assert response.status_code == 201
    assert response.json()["username"] == "full"
    assert list(django_user_model.objects.values_list("username", flat=True)) == ["full"]


def test_register_refuses_a_username_over_150_characters_once_normalized(api_client):
    # U+FDFA is one character that NFKC spells out in eighteen.
    response = api_client.post(
        REGISTER, {"username": "\ufdfa" * 10, "password": "Str0ng-pass-phrase"}
    )
    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.parametrize("typed", ["full", FULLWIDTH_FULL])
def test_a_user_registered_in_fullwidth_signs_in_with_either_form(api_client, client, typed):
    registered = api_client.post(
        REGISTER, {"username": FULLWIDTH_FULL, "password": "Str0ng-pass-phrase"}
    )
    token = registered.json()["token"]

    obtained = api_client.post(TOKEN, {"username": typed, "password": "Str0ng-pass-phrase"})
    assert obtained.status_code == 200
    assert obtained.json() == {"token": token}

    signed_in = client.post(
        "/console/login/", {"username": typed, "password": "Str0ng-pass-phrase"}
    )
    assert signed_in.status_code == 302
