from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from gallery import api as gallery_api
from photoevent import openapi
from processing import api as processing_api
from processing import views as processing_views

api_patterns = [
    path("auth/token", gallery_api.TokenView.as_view(), name="api-auth-token"),
    path("auth/register", gallery_api.RegisterView.as_view(), name="api-auth-register"),
    path("auth/logout", gallery_api.LogoutView.as_view(), name="api-auth-logout"),
    path("auth/logout-all", gallery_api.LogoutAllView.as_view(), name="api-auth-logout-all"),
    path("photographer/events", gallery_api.PhotographerEventsView.as_view(), name="api-photographer-events"),
    path(
        "photographer/events/<int:event_id>",
        gallery_api.PhotographerEventView.as_view(),
        name="api-photographer-event",
    ),
    path(
        "photographer/events/<int:event_id>/upload-photos",
        gallery_api.UploadPhotosView.as_view(),
        name="api-photographer-upload",
    ),
    path(
        "photographer/events/<int:event_id>/photos",
        gallery_api.EventPhotosView.as_view(),
        name="api-photographer-event-photos",
    ),
    path(
        "photographer/events/<int:event_id>/quality",
        gallery_api.EventQualityView.as_view(),
        name="api-photographer-event-quality",
    ),
    path(
        "photographer/events/<int:event_id>/watermark",
        gallery_api.EventWatermarkView.as_view(),
        name="api-photographer-event-watermark",
    ),
    path(
        "photographer/events/<int:event_id>/people",
        gallery_api.EventPeopleView.as_view(),
        name="api-photographer-event-people",
    ),
    path(
        "photographer/events/<int:event_id>/people/<int:group_id>",
        gallery_api.EventPersonView.as_view(),
        name="api-photographer-event-person",
    ),
    path(
        "photographer/events/<int:event_id>/photographers",
        gallery_api.EventPhotographersView.as_view(),
        name="api-photographer-event-photographers",
    ),
    path(
        "photographer/events/<int:event_id>/photographers/<str:username>",
        gallery_api.EventPhotographerView.as_view(),
        name="api-photographer-event-photographer",
    ),
    path("events/join", gallery_api.JoinEventView.as_view(), name="api-events-join"),
    path("guests", gallery_api.GuestView.as_view(), name="api-guests"),
    path("auth/email-link", gallery_api.SignInLinkView.as_view(), name="api-auth-email-link"),
    path("me/notifications", gallery_api.NotificationsView.as_view(), name="api-me-notifications"),
    path("me", gallery_api.AccountView.as_view(), name="api-me"),
    path("me/face-data", gallery_api.FaceDataView.as_view(), name="api-me-face-data"),
    path("me/selfie", gallery_api.SelfieView.as_view(), name="api-me-selfie"),
    path("me/selfie/challenge", gallery_api.SelfieChallengeView.as_view(), name="api-me-selfie-challenge"),
    path("me/selfie/live", gallery_api.LiveSelfieView.as_view(), name="api-me-selfie-live"),
    path("my-photos", gallery_api.MyPhotosView.as_view(), name="api-my-photos"),
    path("all-photos", gallery_api.AllPhotosView.as_view(), name="api-all-photos"),
    path("photos/<int:photo_id>/not-me", gallery_api.PhotoNotMeView.as_view(), name="api-photo-not-me"),
    path("photos/<int:photo_id>/me", gallery_api.PhotoMeView.as_view(), name="api-photo-me"),
    path("admin/queue/stats", processing_api.QueueStatsView.as_view(), name="api-admin-queue-stats"),
    path("admin/queue/jobs/<uuid:job_id>", processing_api.JobView.as_view(), name="api-admin-job"),
    path("admin/queue/jobs/<uuid:job_id>/retry", processing_api.RetryJobView.as_view(), name="api-admin-job-retry"),
    path("admin/cache/clear", processing_api.ClearCacheView.as_view(), name="api-admin-cache-clear"),
    path("admin/aws-metrics", processing_api.AwsMetricsView.as_view(), name="api-admin-aws-metrics"),
    path("admin/aws-metrics/costs", processing_api.AwsCostsView.as_view(), name="api-admin-aws-costs"),
]

urlpatterns = [
    path("admin/monitoring/", processing_views.monitoring, name="admin-monitoring"),
    path("admin/", admin.site.urls),
    *openapi.urlpatterns,
    path("api/", include(api_patterns)),
    # Django's set_language view (POST), used by the language switcher in the page footer.
    path("i18n/", include("django.conf.urls.i18n")),
    # gettext() for JavaScript: the djangojs catalogue of the active language.
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("", include("gallery.urls")),
]

handler400 = "photoevent.api_errors.bad_request"
handler403 = "photoevent.errors.permission_denied"
handler404 = "photoevent.api_errors.not_found"
