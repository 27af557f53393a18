from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from geomarket.accounts import serializers
from geomarket.accounts.selectors import user_profile
from geomarket.accounts.services import token_obtain, user_register
from geomarket.ratelimit import PASSWORD_GUESSES, RateLimitedMixin


class RegisterApi(RateLimitedMixin, APIView):
    permission_classes = [AllowAny]
    rate_limits = (("register", "REGISTER_RATE_LIMIT_PER_MINUTE", "ip"),)
    authentication_classes: list = []

    @extend_schema(
        description=(
            "Creates a customer account and answers its `id`, `username` and API `token`. "
            "Each client address may register `REGISTER_RATE_LIMIT_PER_MINUTE` accounts "
            "a minute."
        ),
        request=serializers.RegisterInputSerializer,
        responses={201: serializers.RegisterOutputSerializer},
        tags=["auth"],
    )
    def post(self, request):
        payload = serializers.RegisterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user, token = user_register(**payload.validated_data)
        return Response(
            {"id": user.pk, "username": user.username, "token": token.key},
            status=status.HTTP_201_CREATED,
        )


class TokenApi(RateLimitedMixin, APIView):
    permission_classes = [AllowAny]
    rate_limits = (PASSWORD_GUESSES,)
    authentication_classes: list = []

    @extend_schema(
        description=(
            "Answers the API token of the account `username` and `password` name. A wrong "
            "password, an unknown and an inactive account are answered alike (400). Each "
            "guess spends from its client address's budget of password guesses, which the "
            "admin's sign-in spends from too."
        ),
        request=serializers.TokenInputSerializer,
        responses={200: serializers.TokenOutputSerializer},
        tags=["auth"],
    )
    def post(self, request):
        payload = serializers.TokenInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token = token_obtain(**payload.validated_data)
        return Response({"token": token.key})


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: serializers.MeOutputSerializer}, tags=["auth"])
    def get(self, request):
        return Response(user_profile(user=request.user))
