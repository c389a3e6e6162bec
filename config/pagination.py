from django.core.paginator import InvalidPage
from django.utils.translation import gettext as _
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound, ValidationError

MAX_PAGE_SIZE = 100


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page-number pagination, but a bad `page` or `page_size` is a 400, not a guess.

    DRF silently clamps a huge page_size and ignores a malformed one; integrators are better
    served by an error that says what the limits are.
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def page_params(self, request) -> tuple[int, int]:
        """(page number, page size) from the query string, validated."""
        query = PageQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        return query.validated_data["page"], query.validated_data.get("page_size") or self.page_size

    def paginate_queryset(self, queryset, request, view=None):
        page_number, page_size = self.page_params(request)
        self.request = request
        paginator = self.django_paginator_class(queryset, page_size)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage:
            raise NotFound(_("Page %(page)s does not exist.") % {"page": page_number}) from None
        return list(self.page)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {"page": {"minimum": 1}, "page_size": {"minimum": 1, "maximum": MAX_PAGE_SIZE}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        properties = paginated["properties"]
        properties["next"]["example"] = "https://tickets.example.com/api/v1/concerts?page=3"
        properties["previous"]["example"] = "https://tickets.example.com/api/v1/concerts?page=1"
        return paginated
