"""Documenting the error shape: one component, and examples drawn from the error catalog
(config.errors.DomainError.catalog: every error class of every app, each with its code,
status, message and example details)."""

from collections import defaultdict

from django.utils.module_loading import autodiscover_modules
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .errors import DomainError, error_body

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


def error_catalog() -> dict[str, type[DomainError]]:
    """Every error code the API can answer with, and its class. Each app keeps its errors in
    its errors.py; importing them all here means the catalog is complete whichever api
    module asks first."""
    autodiscover_modules("errors")
    return DomainError.catalog


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """`responses=` entries for the given error codes, grouped by HTTP status."""
    catalog = error_catalog()
    by_status: dict[int, list[type[DomainError]]] = defaultdict(list)
    for code in codes:
        by_status[catalog[code].status_code].append(catalog[code])
    return {
        status_code: OpenApiResponse(
            response=ErrorSerializer,
            description=", ".join(f"`{error.code}`" for error in errors),
            examples=[
                OpenApiExample(
                    error.code,
                    value=error_body(error.code, error.message, error.example_details),
                    response_only=True,
                )
                for error in errors
            ],
        )
        for status_code, errors in by_status.items()
    }
