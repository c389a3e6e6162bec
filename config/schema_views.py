"""The OpenAPI schema, Swagger UI and ReDoc, answering their own errors in the API's shape.

drf-spectacular's views render errors with their own renderer (YAML, an HTML template or
plain text) and 500 on OPTIONS, which has no template; these are read-only pages.
"""

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer


class JsonErrorsMixin:
    http_method_names = ["get", "head"]

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JsonErrorsMixin, SpectacularSwaggerView):
    pass


class RedocView(JsonErrorsMixin, SpectacularRedocView):
    pass
