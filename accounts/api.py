from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django_redis.exceptions import ConnectionInterrupted
from drf_spectacular.utils import OpenApiExample, extend_schema
from redis.exceptions import RedisError
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from config.openapi import error_responses

from . import services
from .models import User


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name", "date_joined"]
        read_only_fields = fields


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, style={"input_type": "password"}
    )
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, style={"input_type": "password"}
    )


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`.")
    user = UserSerializer()


_USER_EXAMPLE = {
    "id": 42,
    "email": "jimin@example.com",
    "name": "Jimin",
    "date_joined": "2026-11-24T15:30:00+09:00",
}
_TOKEN_EXAMPLE = OpenApiExample(
    "token",
    value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "user": _USER_EXAMPLE},
    response_only=True,
)


class AuthRateThrottle(SimpleRateThrottle):
    """Signup and login attempts per client IP, at settings.AUTH_THROTTLE_RATE.

    Counted in Redis, shared by every web process. When Redis cannot answer, counted per
    process instead: each attempt costs a password hash, so the limit must never lapse into
    letting every attempt through (fail open)."""

    scope = "auth"
    _per_process = LocMemCache("auth-throttle", {"OPTIONS": {"MAX_ENTRIES": 10_000}})

    def __init__(self):
        super().__init__()
        self.cache = caches["strict"]

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (ConnectionInterrupted, RedisError):
            self.cache = self._per_process
            return super().allow_request(request, view)

    def get_rate(self) -> str:
        return settings.AUTH_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def wait(self) -> float:
        # DRF answers None when more requests got in than the rate allows (concurrent ones,
        # or after the rate was lowered); a client still needs a Retry-After.
        wait = super().wait()
        return self.duration if wait is None else wait


class AuthThrottledView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


class SignupView(AuthThrottledView):
    @extend_schema(
        operation_id="accounts_signup",
        summary="Create a customer account",
        description="Passwords are checked by Django's validators (length, common, numeric, "
        "similar to the email). Returns the API token straight away.",
        request=SignupSerializer,
        responses={
            201: TokenResponseSerializer,
            **error_responses("validation_error", "throttled"),
        },
        examples=[
            OpenApiExample(
                "signup",
                value={
                    "email": "jimin@example.com",
                    "password": "purple-stage-2026",
                    "name": "Jimin",
                },
                request_only=True,
            ),
            _TOKEN_EXAMPLE,
        ],
        tags=["accounts"],
    )
    def post(self, request):
        payload = SignupSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user, token = services.user_signup(**payload.validated_data)
        return Response(
            {"token": token, "user": UserSerializer(user).data}, status=status.HTTP_201_CREATED
        )


class TokenView(AuthThrottledView):
    @extend_schema(
        operation_id="accounts_token",
        summary="Log in",
        description="Exchange email and password for the customer's API token.",
        request=TokenRequestSerializer,
        responses={
            200: TokenResponseSerializer,
            **error_responses("validation_error", "invalid_credentials", "throttled"),
        },
        examples=[
            OpenApiExample(
                "login",
                value={"email": "jimin@example.com", "password": "purple-stage-2026"},
                request_only=True,
            ),
            _TOKEN_EXAMPLE,
        ],
        tags=["accounts"],
    )
    def post(self, request):
        payload = TokenRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user, token = services.user_token_obtain(**payload.validated_data)
        return Response({"token": token, "user": UserSerializer(user).data})


class MeView(APIView):
    @extend_schema(
        operation_id="accounts_me",
        summary="Who am I",
        responses={200: UserSerializer, **error_responses("not_authenticated")},
        examples=[OpenApiExample("me", value=_USER_EXAMPLE, response_only=True)],
        tags=["accounts"],
    )
    def get(self, request):
        return Response(UserSerializer(request.user).data)
