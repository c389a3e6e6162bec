"""Documenting the error shape: one component, and examples drawn from one catalog of codes."""

from collections import defaultdict

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .errors import error_body

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(help_text="Stable, machine-readable reason."),
                "message": serializers.CharField(help_text="For people; may change."),
                "details": serializers.DictField(help_text="Per-field errors or context."),
            },
        )
    },
)

# code -> (status, example message, example details)
ERROR_CATALOG: dict[str, tuple[int, str, dict]] = {
    "validation_error": (
        400,
        "The request has invalid fields; see details.",
        {"field_name": ["This field is required."]},
    ),
    "malformed_request": (400, "JSON parse error - Expecting value: line 1 column 1 (char 0)", {}),
    "invalid_credentials": (400, "Email or password is wrong.", {}),
    "not_authenticated": (401, "Authentication credentials were not provided.", {}),
    "queue_token_invalid": (
        401,
        "The X-Queue-Token header is missing, malformed, or not yours for this concert.",
        {},
    ),
    "queue_not_admitted": (
        403,
        "You are still waiting in the queue.",
        {"position": 1532, "eta_seconds": 307},
    ),
    "insufficient_balance": (
        402,
        "The wallet balance is too low. Charge the wallet and pay again.",
        {"balance": 100000, "amount": 330000},
    ),
    "not_found": (404, "Not found.", {}),
    "seats_unavailable": (409, "Some of these seats are already taken.", {"seat_ids": [102]}),
    "hold_limit_reached": (
        409,
        "You may hold at most 4 seats of a performance at once.",
        {"held": 4, "limit": 4},
    ),
    "reservation_not_payable": (
        409,
        "This reservation cannot be paid.",
        {"status": "confirmed"},
    ),
    "reservation_not_cancellable": (
        409,
        "Only a held reservation can be cancelled.",
        {"status": "confirmed"},
    ),
    "sales_closed": (
        409,
        "This performance has started; its seats are no longer on sale.",
        {},
    ),
    "idempotency_in_progress": (
        409,
        "A request with this Idempotency-Key is still being processed. Retry shortly.",
        {},
    ),
    "hold_expired": (
        410,
        "The hold ran out and its seats went to someone else. Hold seats again.",
        {"reservation_id": 314},
    ),
    "idempotency_key_reused": (
        422,
        "This Idempotency-Key was used for a different request.",
        {},
    ),
    "queue_closed": (409, "Ticket sales for this concert have not been announced yet.", {}),
    "queue_token_expired": (
        410,
        "This queue entry has ended. Enter the queue again.",
        {"state": "expired"},
    ),
    "throttled": (
        429,
        "Request was throttled. Expected available in 12 seconds.",
        {"retry_after_seconds": 12},
    ),
    "service_unavailable": (
        503,
        "A service this request needs is unavailable. Please retry shortly.",
        {},
    ),
}


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """`responses=` entries for the given error codes, grouped by HTTP status."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in codes:
        by_status[ERROR_CATALOG[code][0]].append(code)
    responses = {}
    for status_code, status_codes in by_status.items():
        examples = []
        for code in status_codes:
            _, message, details = ERROR_CATALOG[code]
            examples.append(
                OpenApiExample(code, value=error_body(code, message, details), response_only=True)
            )
        responses[status_code] = OpenApiResponse(
            response=ErrorSerializer,
            description=", ".join(f"`{code}`" for code in status_codes),
            examples=examples,
        )
    return responses
