"""The benchmark's ceiling: what Django, DRF and our middleware and authentication cost with
no work behind them. Mounted only with BENCHMARK_ENDPOINTS=true (bench/ sets it)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView


class NoopView(APIView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"ok": True})
