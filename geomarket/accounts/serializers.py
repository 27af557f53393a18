from django.contrib.auth import get_user_model
from rest_framework import serializers

from geomarket.accounts.models import USERNAME_TAKEN
from geomarket.accounts.roles import Role

User = get_user_model()


class NormalizedUsernameMixin:
    """NFKC-normalizes the username before the field's validators run, as Django's login
    forms do: a fullwidth `bob` is `bob` here too, and the length and character rules apply to the
    name as it is stored."""

    def to_internal_value(self, data):
        return User.normalize_username(super().to_internal_value(data))


class UsernameField(NormalizedUsernameMixin, serializers.RegexField):
    pass


class LoginUsernameField(NormalizedUsernameMixin, serializers.CharField):
    pass


class RegisterInputSerializer(serializers.Serializer):
    username = UsernameField(
        r"^[\w.@+-]+\Z",
        max_length=150,
        error_messages={"invalid": "Use letters, digits and @/./+/-/_ only."},
    )
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    # Django's email check passes addresses up to 320 characters; the column holds fewer.
    email = serializers.EmailField(
        max_length=User._meta.get_field("email").max_length,
        required=False,
        allow_blank=True,
        # A client that writes an absent value as null means no email, as "" does.
        allow_null=True,
        default="",
    )

    def validate_email(self, value: str | None) -> str:
        return value or ""

    def validate_username(self, value: str) -> str:
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError(USERNAME_TAKEN)
        return value


class RegisterOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    token = serializers.CharField()


class TokenInputSerializer(serializers.Serializer):
    username = LoginUsernameField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()


class MeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=[r.value for r in Role]))
    merchant_id = serializers.IntegerField(allow_null=True)
    courier_id = serializers.IntegerField(allow_null=True)
