from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from geomarket.accounts.models import USERNAME_TAKEN, User
from geomarket.errors import DomainError
from geomarket.services import unique_claim


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 400
    default_message = "Unable to log in with the provided credentials."


class UsernameTaken(DomainError):
    code = "username_taken"
    default_message = USERNAME_TAKEN


@transaction.atomic
def user_register(*, username: str, password: str, email: str = "") -> tuple[User, Token]:
    """Create a customer account and its API token in one transaction.

    The caller normalizes the username and checks it is free first
    (`RegisterInputSerializer`); the loser of two concurrent registrations of one name, in
    any case, gets the check's answer too (`unique_claim`).
    """
    user = User(username=username, email=email)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    with unique_claim(
        taken=User.objects.filter(username__iexact=username).exists,
        refusal=UsernameTaken(field="username"),
    ):
        user.save()
    token = Token.objects.create(user=user)
    return user, token


def token_obtain(*, username: str, password: str) -> Token:
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    token, _ = Token.objects.get_or_create(user=user)
    return token
