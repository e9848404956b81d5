"""Staff-only monitoring endpoints: thin views over processing.monitoring and processing.costs."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gallery.caching import clear_cache
from gallery.models import Photo
from processing.costs import cost_summary, usage_summary
from processing.monitoring import job_json, queue_stats
from processing.services import requeue_photo


class StaffAPIView(APIView):
    permission_classes = [IsAdminUser]


class QueueStatsView(StaffAPIView):
    def get(self, request: Request) -> Response:
        return Response(queue_stats())


def _job(job_id: uuid.UUID) -> Photo:
    photo = Photo.objects.filter(job_id=job_id).first()
    if photo is None:
        raise NotFound(_("Job not found"))
    return photo


class JobView(StaffAPIView):
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        return Response(job_json(_job(job_id)))


class RetryJobView(StaffAPIView):
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        photo = _job(job_id)
        if not requeue_photo(photo, only_failed=True):
            raise ValidationError(
                {"detail": _("Only failed jobs can be retried; this one is %(status)s") % {"status": photo.status}}
            )
        photo.refresh_from_db()
        return Response(job_json(photo))


class ClearCacheView(StaffAPIView):
    def post(self, request: Request) -> Response:
        clear_cache()
        return Response({"detail": _("Cache cleared")})


class AwsMetricsView(StaffAPIView):
    """Face-service calls, errors, throttles, p50/p95 latency and stored faces (today, 7 and 30 days)."""

    def get(self, request: Request) -> Response:
        return Response(usage_summary())


class AwsCostsView(StaffAPIView):
    """Estimated Rekognition cost per day (?days=, default 30), month and event."""

    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", "30")
        try:
            days = int(raw)
        except ValueError:
            raise ValidationError({"detail": _("'days' must be a whole number")}) from None
        if not 1 <= days <= 366:
            raise ValidationError({"detail": _("'days' must be between 1 and 366")})
        return Response(cost_summary(days))
