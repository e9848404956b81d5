from django.contrib.auth import views as auth_views
from django.urls import path

from gallery import views

urlpatterns = [
    path("", views.home, name="gallery-home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("join/", views.join_by_code, name="gallery-join"),
    path("e/<str:code>/", views.join_link, name="gallery-join-link"),
    path("consent/", views.consent, name="gallery-consent"),
    path("selfie/", views.selfie, name="gallery-selfie"),
    path("events/<int:event_id>/", views.my_photos, name="gallery-my-photos"),
    path("events/<int:event_id>/all/", views.all_photos, name="gallery-all-photos"),
    path("studio/", views.studio, name="gallery-studio"),
    path("studio/events/<int:event_id>/", views.studio_event, name="gallery-studio-event"),
    path("media/photos/<int:photo_id>/<str:variant>", views.photo_file, name="gallery-photo-file"),
]
