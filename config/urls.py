from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _

from .benchmark import NoopView
from .errors import api_not_found
from .health import healthz
from .schema_views import RedocView, SchemaView, SwaggerView

admin.site.site_header = _("Concert reservations — operations")
admin.site.site_title = _("Concert operations")
admin.site.index_title = _("Concerts, schedules, sales")
admin.site.site_url = "/api/docs/"  # "View site": there is no customer web page, only the API

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("concerts.urls")),
    path("", include("queueing.urls")),
    path("", include("reservations.urls")),
    path("", include("payments.urls")),
]
if settings.BENCHMARK_ENDPOINTS:
    api_v1.append(path("_bench/noop", NoopView.as_view(), name="bench-noop"))

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    # Anything else under /api is a JSON 404, whatever DEBUG says.
    re_path(r"^[Aa][Pp][Ii](?:/.*)?$", api_not_found),
    path("healthz", healthz, name="healthz"),  # answered by HealthCheckMiddleware first
    # The operator console (docs/console.md): admin pages of its own, matched before the
    # admin's catch-all would take "console" for an app label.
    path("admin/console/", include("console.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "config.errors.json_bad_request"
handler404 = "config.errors.json_page_not_found"
handler500 = "config.errors.json_server_error"
