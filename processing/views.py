"""The staff monitoring page in the admin: the same figures as the monitoring API."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from gallery.caching import clear_cache
from processing.costs import cost_summary, usage_summary
from processing.monitoring import queue_stats


@staff_member_required
@require_http_methods(["GET", "POST"])
def monitoring(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        clear_cache()
        messages.success(request, _("Cache cleared."))
        return redirect("admin-monitoring")
    context = {
        **admin.site.each_context(request),
        "title": _("Monitoring"),
        "stats": queue_stats(),
        "usage": usage_summary(),
        "costs": cost_summary(),
    }
    return TemplateResponse(request, "admin/monitoring.html", context)
