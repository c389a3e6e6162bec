"""The one error shape of the API, and the single place that produces it.

Every error a client sees is {"error": {"code", "message", "details"}}. Services raise
DomainError subclasses with a stable `code`; DRF's own exceptions, Django's Http404 and
infrastructure outages are translated here, so no view formats an error by hand.
"""

import logging
from typing import Any

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS_ON_OUTAGE = 5


class DomainError(Exception):
    """A business rule said no. Subclasses set `status_code`, `code` and a default message."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "bad_request"
    message: str = "The request cannot be processed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)

    # Seconds the client should wait before retrying; sent as Retry-After when set.
    retry_after: int | None = None


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    message = "Not found."


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    message = "A service this request needs is unavailable. Please retry shortly."
    retry_after = RETRY_AFTER_SECONDS_ON_OUTAGE


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# DRF exception class -> our stable code. Subclasses are matched by walking the MRO.
_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}

_DRF_MESSAGES = {
    "validation_error": "The request has invalid fields; see details.",
}


def _drf_code(exc: exceptions.APIException) -> str:
    for klass in type(exc).__mro__:
        if klass in _DRF_CODES:
            return _DRF_CODES[klass]
    return exc.default_code if isinstance(exc.default_code, str) else "error"


def _validation_details(detail: Any) -> dict[str, Any]:
    """DRF's nested ErrorDetail structure -> plain JSON, always keyed by field."""
    if isinstance(detail, dict):
        return {key: _plain(value) for key, value in detail.items()}
    return {"non_field_errors": _plain(detail if isinstance(detail, list) else [detail])}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value)


# MySQL/MariaDB error codes that mean "the database cannot answer now, retry shortly":
# connection refused/lost/gone away, too many connections, server shutting down, and
# deadlock / lock wait timeout (services retry those; one that still escapes is retryable).
# mysqlclient raises OperationalError for bugs too (1054 unknown column): those stay 500s.
MYSQL_RETRYABLE = {1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}


def _is_outage(exc: Exception) -> bool:
    """Redis or the database cannot answer right now: the client should retry, not give up."""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    if isinstance(exc, InterfaceError):  # the connection is already closed
        return True
    if isinstance(exc, OperationalError):
        code = exc.args[0] if exc.args else None
        if isinstance(code, int):
            return code in MYSQL_RETRYABLE
        return "locked" in str(exc)  # SQLite: "database is locked"
    return False


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF EXCEPTION_HANDLER: every exception raised under a DRF view becomes the error shape."""
    headers: dict[str, str] = {}

    if isinstance(exc, DomainError):
        status_code, code, message, details = exc.status_code, exc.code, exc.message, exc.details
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Http404):
        status_code, code, message, details = 404, "not_found", "Not found.", {}
    elif isinstance(exc, DjangoPermissionDenied):
        status_code, code, message, details = 403, "permission_denied", "Permission denied.", {}
    elif isinstance(exc, exceptions.APIException):
        status_code, code = exc.status_code, _drf_code(exc)
        if code == "validation_error":
            details = _validation_details(exc.detail)
            message = _DRF_MESSAGES[code]
        else:
            details = {}
            message = (
                str(exc.detail) if not isinstance(exc.detail, dict | list) else exc.default_detail
            )
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
            details = {"retry_after_seconds": int(headers["Retry-After"])}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
    elif _is_outage(exc):
        logger.warning("Dependency unavailable: %r", exc)
        status_code, code = 503, ServiceUnavailable.code
        message, details = ServiceUnavailable.message, {}
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS_ON_OUTAGE)
    else:
        return None  # a bug: Django's 500 handler logs it and answers in the error shape

    set_rollback()
    return Response(error_body(code, message, details), status=status_code, headers=headers)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.lower().startswith(("/api", "/healthz"))


def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The route of last resort under /api: a JSON 404 even with DEBUG on, where Django
    would skip handler404 and show its HTML page."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_page_not_found(request: HttpRequest, exception: Exception | None = None):
    """handler404: the error shape for API paths, Django's page for admin and the rest."""
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request: HttpRequest):
    if _wants_json(request):
        return JsonResponse(
            error_body("internal_error", "Something went wrong on our side. It has been logged."),
            status=500,
        )
    from django.views.defaults import server_error

    return server_error(request)


def json_bad_request(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
