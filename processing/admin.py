"""Admin for face-service usage: the aggregated rows plus the same summaries as the staff API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from processing.costs import cost_summary, usage_summary
from processing.models import FaceServiceUsage


@admin.register(FaceServiceUsage)
class FaceServiceUsageAdmin(admin.ModelAdmin):
    list_display = ("day", "event_id", "backend", "operation", "calls", "errors", "throttles", "images")
    list_filter = ("backend", "operation", "day")
    search_fields = ("operation",)
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        # Same functions as GET /api/admin/aws-metrics and /costs, so the figures agree.
        context = {**(extra_context or {}), "usage": usage_summary(), "costs": cost_summary()}
        response: TemplateResponse = super().changelist_view(request, context)  # type: ignore[assignment]
        return response
