"""The one error shape of the API, and the single place that produces it.

Every error a client sees is {"error": {"code", "message", "details"}}. Services raise
DomainError subclasses with a stable `code`; DRF's own exceptions, Django's Http404 and
infrastructure outages are translated here, so no view formats an error by hand.
"""

import logging
import time
from typing import Any, ClassVar

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .redis import CircuitOpen
from .request_id import current_request_id

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS_ON_OUTAGE = 5
OUTAGE_LOG_SECONDS = 10


class DomainError(Exception):
    """A rule said no. Each subclass is one entry of the error catalog: a stable `code`, its
    HTTP status, a default message and example details (the schema's examples and docs/api.md
    are drawn from them). One class per code: defining a second one is an error at import."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "bad_request"
    message: str = _("The request cannot be processed.")
    example_details: ClassVar[dict[str, Any]] = {}
    # Seconds the client should wait before retrying; sent as Retry-After when set.
    retry_after: int | None = None

    catalog: ClassVar[dict[str, type["DomainError"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        known = DomainError.catalog.get(cls.code)
        if known is not None and _name(known) != _name(cls):
            raise TypeError(f"{_name(cls)}: code {cls.code!r} belongs to {_name(known)} already")
        DomainError.catalog[cls.code] = cls

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)


def _name(error_class: type) -> str:
    return f"{error_class.__module__}.{error_class.__qualname__}"


# The errors of the web layer itself: what DRF and Django raise, mapped onto the catalog by
# api_exception_handler, plus those the edge answers by hand (404 and 500 pages, health).


class BadRequest(DomainError):
    code = "bad_request"
    message = _("Bad request.")


class ValidationFailed(DomainError):
    """Any request field that is missing, of the wrong type or against a rule. The one class
    for `validation_error`: services raise it with the offending field in `details`."""

    code = "validation_error"
    message = _("The request has invalid fields; see details.")
    example_details = {"field_name": ["This field is required."]}

    @classmethod
    def on(cls, field: str, *problems: str) -> "ValidationFailed":
        return cls(details={field: list(problems)})


class MalformedRequest(DomainError):
    code = "malformed_request"
    message = _("JSON parse error - Expecting value: line 1 column 1 (char 0)")


class NotAuthenticated(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "not_authenticated"
    message = _("Authentication credentials were not provided.")


class PermissionDenied(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
    message = _("Permission denied.")


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    message = _("Not found.")


class PayloadTooLarge(DomainError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    message = _("The request body is too large.")
    example_details = {"max_bytes": 65536}


class UriTooLong(DomainError):
    status_code = status.HTTP_414_REQUEST_URI_TOO_LONG
    code = "uri_too_long"
    message = _("The request's URL is too long.")


class RequestHeadersTooLarge(DomainError):
    status_code = status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE
    code = "request_headers_too_large"
    message = _("The request's headers are too large.")


class ExpectationFailed(DomainError):
    status_code = status.HTTP_417_EXPECTATION_FAILED
    code = "expectation_failed"
    message = _("The Expect header cannot be met.")


class MethodNotAllowed(DomainError):
    status_code = status.HTTP_405_METHOD_NOT_ALLOWED
    code = "method_not_allowed"
    message = 'Method "DELETE" not allowed.'


class NotAcceptable(DomainError):
    status_code = status.HTTP_406_NOT_ACCEPTABLE
    code = "not_acceptable"
    message = _("Could not satisfy the request Accept header.")


class UnsupportedMediaType(DomainError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"
    message = 'Unsupported media type "text/xml" in request.'


class Throttled(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "throttled"
    message = _("Request was throttled. Expected available in 12 seconds.")
    example_details = {"retry_after_seconds": 12}


class InternalError(DomainError):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    code = "internal_error"
    message = _("Something went wrong on our side. It has been logged.")


class NotImplementedByServer(DomainError):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    code = "not_implemented"
    message = _("The request uses a feature the server does not support (e.g. a transfer coding).")


class GatewayTimeout(DomainError):
    """Answered by the reverse proxy when the application took too long: the outcome of the
    request is unknown, so a client retries a write with the same Idempotency-Key."""

    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    code = "gateway_timeout"
    message = _("The request took too long. Retry it (with the same Idempotency-Key for a write).")


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    message = _("A service this request needs is unavailable. Please retry shortly.")
    retry_after = RETRY_AFTER_SECONDS_ON_OUTAGE


# Idempotency-Key (config/idempotency.py): a web-layer mechanism any write view can use.


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    message = _("This Idempotency-Key was used for a different request.")


class IdempotencyInProgress(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "idempotency_in_progress"
    message = _("A request with this Idempotency-Key is still being processed. Retry shortly.")
    retry_after = 1


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    """The one error shape; `request_id` is the request's (config/request_id.py), when there
    is a request (the schema's examples have none)."""
    body = {"code": code, "message": message, "details": details or {}}
    request_id = current_request_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    return {"error": body}


def read_only_refusal(request: HttpRequest) -> JsonResponse | None:
    """405 in the one error shape for anything but GET and HEAD, for the plain Django views
    outside DRF (/healthz, /metrics); None when the method is fine."""
    if request.method in ("GET", "HEAD"):
        return None
    response = JsonResponse(
        error_body("method_not_allowed", f'Method "{request.method}" not allowed.'), status=405
    )
    response["Allow"] = "GET, HEAD"
    return response


# DRF's exceptions -> the catalog entry that answers them. Subclasses are matched by walking
# the MRO. The message stays DRF's own (it names the method, the media type, the wait).
_DRF_ERRORS: dict[type[exceptions.APIException], type[DomainError]] = {
    exceptions.ValidationError: ValidationFailed,
    exceptions.ParseError: MalformedRequest,
    exceptions.NotAuthenticated: NotAuthenticated,
    exceptions.AuthenticationFailed: NotAuthenticated,
    exceptions.PermissionDenied: PermissionDenied,
    exceptions.NotFound: NotFound,
    exceptions.MethodNotAllowed: MethodNotAllowed,
    exceptions.NotAcceptable: NotAcceptable,
    exceptions.UnsupportedMediaType: UnsupportedMediaType,
    exceptions.Throttled: Throttled,
}


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


# Why a dependency could not answer, as /metrics counts the 503s (docs/metrics.md).
MYSQL_LOCK_CONFLICTS = {1205, 1213}


def outage_cause(exc: Exception) -> str | None:
    """The cause when Redis or the database cannot answer right now (the client should
    retry, not give up), else None."""

    if isinstance(exc, CircuitOpen):
        return "redis_circuit_open"
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "redis_timeout"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return "redis_unreachable"
    if isinstance(exc, InterfaceError):  # the connection is already closed
        return "database_unreachable"
    if isinstance(exc, OperationalError):
        code = exc.args[0] if exc.args else None
        if isinstance(code, int):
            if code not in MYSQL_RETRYABLE:
                return None
            return (
                "database_lock_conflict" if code in MYSQL_LOCK_CONFLICTS else "database_unreachable"
            )
        return "database_locked" if "locked" in str(exc) else None  # SQLite: "database is locked"
    return None


def _from_drf(exc: exceptions.APIException) -> DomainError:
    """DRF's exception as the catalog entry that answers it, keeping DRF's status and its
    message (which names the method, the media type or the wait)."""
    entry = next((_DRF_ERRORS[k] for k in type(exc).__mro__ if k in _DRF_ERRORS), None)
    if entry is ValidationFailed:
        return ValidationFailed(details=_validation_details(exc.detail))
    message = str(exc.detail) if not isinstance(exc.detail, dict | list) else exc.default_detail
    if entry is None:  # an APIException we never met: its own status and code
        error = DomainError(message)
        error.status_code = exc.status_code
        error.code = exc.default_code if isinstance(exc.default_code, str) else "error"
        return error
    error = entry(message)
    error.status_code = exc.status_code
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        error.retry_after = max(1, int(exc.wait + 0.999))
        error.details = {"retry_after_seconds": error.retry_after}
    return error


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF EXCEPTION_HANDLER: every exception raised under a DRF view becomes the error shape."""
    headers: dict[str, str] = {}
    outage = None
    if isinstance(exc, DomainError):
        error = exc
    elif isinstance(exc, Http404):
        error = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        error = PermissionDenied()
    elif isinstance(exc, exceptions.APIException):
        error = _from_drf(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
    elif (cause := outage_cause(exc)) is not None:
        _log_outage(exc)
        error = ServiceUnavailable()
        outage = cause
    else:
        return None  # a bug: Django's 500 handler logs it and answers in the error shape

    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    set_rollback()
    response = Response(
        error_body(error.code, error.message, error.details),
        status=error.status_code,
        headers=headers,
    )
    if isinstance(error, ServiceUnavailable):
        # An outage is logged by _log_outage (and config/redis.py), a few lines a minute, not
        # as Django's ERROR line for every 503 answered while it lasts.
        response._has_been_logged = True
        # For the metrics middleware (monitoring/): which dependency failed. An attribute of
        # the response object, never a header: clients learn nothing from it.
        response.outage_cause = outage or "service_unavailable"
    return response


_outage_logged_at = 0.0


def _log_outage(exc: Exception) -> None:
    """A WARNING at most every OUTAGE_LOG_SECONDS per process while a dependency is down:
    during a 20 s database restart the web answers hundreds of 503s, and one line says it."""
    global _outage_logged_at
    now = time.monotonic()
    if now - _outage_logged_at >= OUTAGE_LOG_SECONDS:
        _outage_logged_at = now
        logger.warning("Dependency unavailable, answering 503 while it lasts: %r", exc)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.lower().startswith(("/api", "/healthz", "/metrics"))


def error_for_status(status_code: int) -> DomainError:
    """The catalog's entry for an HTTP status the edge (gunicorn, the proxy) answers itself."""
    for error in DomainError.catalog.values():
        if error.status_code == status_code and error.__module__ == __name__:
            return error()
    return BadRequest() if status_code < 500 else InternalError()


@csrf_exempt  # an unknown path is a 404 for every method, never a CSRF failure
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """The route of last resort under /api: a JSON 404 even with DEBUG on, where Django
    would skip handler404 and show its HTML page."""
    return _json_error(NotFound())


def _json_error(error: DomainError) -> JsonResponse:
    return JsonResponse(
        error_body(error.code, error.message, error.details), status=error.status_code
    )


def csrf_failure(request: HttpRequest, reason: str = ""):
    """CSRF_FAILURE_VIEW: the error shape under /api (the API itself is CSRF-exempt: it
    authenticates with Bearer tokens, not cookies), Django's page for admin."""
    if _wants_json(request):
        return _json_error(PermissionDenied(_("CSRF verification failed.")))
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def json_page_not_found(request: HttpRequest, exception: Exception | None = None):
    """handler404: the error shape for API paths, Django's page for admin and the rest."""
    if _wants_json(request):
        return _json_error(NotFound())
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request: HttpRequest):
    if _wants_json(request):
        return _json_error(InternalError())
    from django.views.defaults import server_error

    return server_error(request)


def json_bad_request(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        if isinstance(exception, RequestDataTooBig):
            return _json_error(PayloadTooLarge())
        return _json_error(BadRequest())
    from django.views.defaults import bad_request

    return bad_request(request, exception)
