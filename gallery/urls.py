from django.contrib.auth import views as auth_views
from django.urls import path
from django_ratelimit.decorators import ratelimit

from gallery import views
from gallery.api import rate_for

# Per client address, like the API's token and register endpoints.
auth_rate_limit = ratelimit(group="auth", key="ip", rate=rate_for("auth"), method="POST", block=True)

urlpatterns = [
    path("", views.home, name="gallery-home"),
    path("signup/", auth_rate_limit(views.signup), name="signup"),
    path("login/", auth_rate_limit(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("join/", views.join_by_code, name="gallery-join"),
    path("e/<str:code>/", views.join_link, name="gallery-join-link"),
    path("consent/", views.consent, name="gallery-consent"),
    path("selfie/", views.selfie, name="gallery-selfie"),
    path("events/<int:event_id>/", views.my_photos, name="gallery-my-photos"),
    path("events/<int:event_id>/all/", views.all_photos, name="gallery-all-photos"),
    path("events/<int:event_id>/my-photos.zip", views.my_photos_zip, name="gallery-my-photos-zip"),
    path("photos/<int:photo_id>/", views.photo_page, name="gallery-photo"),
    path("me/face-data/", views.face_data, name="gallery-face-data"),
    path("me/delete-account/", views.delete_account, name="gallery-delete-account"),
    path("me/deleted/", views.deleted, name="gallery-deleted"),
    path("studio/", views.studio, name="gallery-studio"),
    path("studio/events/<int:event_id>/", views.studio_event, name="gallery-studio-event"),
    path("studio/events/<int:event_id>/qr.png", views.studio_event_qr, {"kind": "png"}, name="gallery-studio-qr-png"),
    path("studio/events/<int:event_id>/qr.svg", views.studio_event_qr, {"kind": "svg"}, name="gallery-studio-qr-svg"),
    path(
        "studio/events/<int:event_id>/visibility/",
        views.studio_event_visibility,
        name="gallery-studio-event-visibility",
    ),
    path("studio/events/<int:event_id>/delete/", views.studio_event_delete, name="gallery-studio-event-delete"),
    path("studio/photos/<int:photo_id>/delete/", views.studio_photo_delete, name="gallery-studio-photo-delete"),
    path("media/photos/<int:photo_id>/<str:variant>", views.photo_file, name="gallery-photo-file"),
]
