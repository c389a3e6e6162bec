"""What the application itself does at its edge, with or without a proxy in front of it."""

from django.conf import settings
from django.http import HttpRequest

from .errors import PayloadTooLarge, error_body


class ApiBodyLimitMiddleware:
    """A body over API_MAX_BODY_BYTES under /api is refused with 413 `payload_too_large`
    before anything reads it. Every API body is a small JSON object; DRF reads the request
    stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone would not stop it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                from django.http import JsonResponse

                error = PayloadTooLarge(details={"max_bytes": settings.API_MAX_BODY_BYTES})
                return JsonResponse(
                    error_body(error.code, error.message, error.details),
                    status=error.status_code,
                )
        return self.get_response(request)
