from django.contrib.auth import views as auth_views
from django.urls import path

from gallery.ratelimits import auth_rate_limit
from gallery.views import account, attendee, guest, media, studio

# Per client address, like the API's token and register endpoints.
limit_auth = auth_rate_limit()

urlpatterns = [
    path("", attendee.home, name="gallery-home"),
    path("signup/", limit_auth(account.signup), name="signup"),
    path("login/", limit_auth(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("login/email/", guest.email_sign_in_link, name="gallery-email-link"),
    path("login/link/", guest.sign_in_with_link, name="gallery-sign-in-link"),
    path("me/", guest.account, name="gallery-account"),
    path("alerts/unsubscribe/<str:token>/", guest.unsubscribe, name="gallery-unsubscribe"),
    path("join/", attendee.join_by_code, name="gallery-join"),
    path("e/<str:code>/", attendee.join_link, name="gallery-join-link"),
    path("consent/", attendee.consent, name="gallery-consent"),
    path("selfie/", attendee.selfie, name="gallery-selfie"),
    path("selfie/live/", attendee.live_selfie, name="gallery-live-selfie"),
    path("events/<int:event_id>/", attendee.my_photos, name="gallery-my-photos"),
    path("events/<int:event_id>/all/", attendee.all_photos, name="gallery-all-photos"),
    path("events/<int:event_id>/my-photos.zip", attendee.my_photos_zip, name="gallery-my-photos-zip"),
    path("events/<int:event_id>/my-photos-zip/", attendee.my_photos_archive, name="gallery-my-photos-archive"),
    path(
        "events/<int:event_id>/my-photos-zip/status",
        attendee.my_photos_archive_status,
        name="gallery-my-photos-archive-status",
    ),
    path("photos/<int:photo_id>/", attendee.photo_page, name="gallery-photo"),
    path("photos/<int:photo_id>/not-me/", attendee.photo_not_me, name="gallery-photo-not-me"),
    path("photos/<int:photo_id>/not-me/undo/", attendee.photo_not_me_undo, name="gallery-photo-not-me-undo"),
    path("photos/<int:photo_id>/me/", attendee.photo_me, name="gallery-photo-me"),
    path("events/<int:event_id>/hidden/", attendee.hidden_photos, name="gallery-hidden-photos"),
    path("me/face-data/", account.face_data, name="gallery-face-data"),
    path("me/delete-account/", account.delete_account, name="gallery-delete-account"),
    path("me/deleted/", account.deleted, name="gallery-deleted"),
    path("studio/", studio.studio, name="gallery-studio"),
    path("studio/events/<int:event_id>/", studio.studio_event, name="gallery-studio-event"),
    path("studio/events/<int:event_id>/qr.png", studio.studio_event_qr, {"kind": "png"}, name="gallery-studio-qr-png"),
    path("studio/events/<int:event_id>/qr.svg", studio.studio_event_qr, {"kind": "svg"}, name="gallery-studio-qr-svg"),
    path(
        "studio/events/<int:event_id>/visibility/",
        studio.studio_event_visibility,
        name="gallery-studio-event-visibility",
    ),
    path(
        "studio/events/<int:event_id>/watermark/",
        studio.studio_event_watermark,
        name="gallery-studio-event-watermark",
    ),
    path("studio/events/<int:event_id>/delete/", studio.studio_event_delete, name="gallery-studio-event-delete"),
    path("studio/events/<int:event_id>/upload/", studio.studio_event_upload, name="gallery-studio-event-upload"),
    path(
        "studio/events/<int:event_id>/photographers/",
        studio.studio_event_photographers,
        name="gallery-studio-event-photographers",
    ),
    path(
        "studio/events/<int:event_id>/photographers/<str:username>/remove/",
        studio.studio_event_photographer_remove,
        name="gallery-studio-event-photographer-remove",
    ),
    path("studio/photos/<int:photo_id>/delete/", studio.studio_photo_delete, name="gallery-studio-photo-delete"),
    path("media/photos/<int:photo_id>/faces/<int:face_id>", media.photo_face_file, name="gallery-photo-face"),
    path("media/photos/<int:photo_id>/<str:variant>", media.photo_file, name="gallery-photo-file"),
    path("media/faces/<int:face_id>/crop.jpg", media.face_crop, name="gallery-face-crop"),
    path("studio/events/<int:event_id>/people/", studio.studio_event_people, name="gallery-studio-event-people"),
    path("studio/events/<int:event_id>/quality/", studio.studio_event_quality, name="gallery-studio-event-quality"),
]
