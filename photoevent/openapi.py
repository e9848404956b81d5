"""The OpenAPI 3 description of the REST API, and the routes that serve it.

`GET /api/schema/` is the document (YAML, or JSON with `?format=json`) and
`/api/docs/` renders it with Swagger UI. Swagger UI's files come from
drf-spectacular-sidecar and are served by this site, and its start-up script is
a separate request (`SpectacularSwaggerSplitView`), so the page needs neither a
CDN nor an inline script.

The views are thin `APIView`s that build their JSON by hand; what they accept
and answer is described here, once, with serializers that exist for the
documentation only. Each description is attached to its view class by an
`OpenApiViewExtension` named by its dotted path, so this module imports no view
and the views stay free of documentation. tests/photoevent/test_openapi.py
fails when an /api/ route is missing from the document.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers

# --- Shapes shared by many endpoints ------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error of the API: a 4xx or 5xx status and one sentence for a person."""

    detail = serializers.CharField(help_text=_("What went wrong, in the request's language."))


class MessageSerializer(serializers.Serializer):
    """A success that is only a sentence for a person."""

    detail = serializers.CharField()


_ERROR_MEANINGS = {
    400: _("The request is invalid; `detail` says why."),
    401: _("Not authenticated: send `Authorization: Token <key>` or a session cookie."),
    403: _("Authenticated but not allowed to do this."),
    404: _("No such object, or the caller may not know it exists."),
    429: _("Too many requests; wait for the `Retry-After` header's seconds."),
    503: _("The queue or the face service is busy; retry after the `Retry-After` header's seconds."),
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation, each `{"detail": "..."}`."""
    return {status: OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS[status]) for status in statuses}


def paginated(name: str, item: serializers.Serializer, **extra: serializers.Field) -> serializers.Serializer:
    """The page-number pagination envelope around `item`."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
            **extra,
        },
    )


PAGE = OpenApiParameter("page", OpenApiTypes.INT, description=_("Page number, from 1."))
EVENT_QUERY = OpenApiParameter(
    "event",
    OpenApiTypes.INT,
    description=_("The event's id; may be left out when the attendee joined exactly one event."),
)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text=_("Send it as `Authorization: Token <token>`."))


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class RegistrationSerializer(CredentialsSerializer):
    email = serializers.EmailField(required=False)


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    date = serializers.DateField(allow_null=True)


class PhotographerEventSerializer(EventSerializer):
    code = serializers.CharField(help_text=_("The join code guests type or scan."))


class NewEventSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    date = serializers.DateField(required=False, allow_null=True, help_text=_("YYYY-MM-DD"))


class PhotoCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    processing = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()


class PhotographerEventDetailSerializer(PhotographerEventSerializer):
    link = serializers.URLField(help_text=_("The join link the QR code encodes."))
    photos = PhotoCountsSerializer()


class UploadSerializer(serializers.Serializer):
    photos = serializers.ListField(
        child=serializers.FileField(),
        help_text=_("One or more image files (JPEG, PNG, WebP, HEIC/HEIF), each a part named `photos`."),
    )


class UploadJobSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("The file's 0-based position among the `photos` parts."))
    filename = serializers.CharField()
    job_id = serializers.UUIDField()
    photo_id = serializers.IntegerField()
    status = serializers.CharField(help_text=_("queued, processing, done or failed"))
    duplicate = serializers.BooleanField(help_text=_("The event already had these exact bytes (by SHA-256)."))
    stored_filename = serializers.CharField(
        required=False, help_text=_("For a duplicate: the name the stored copy was sent with, when it differs.")
    )


class UploadRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    filename = serializers.CharField()
    error = serializers.CharField(help_text=_("Why the file was refused."))


class UploadResultSerializer(serializers.Serializer):
    jobs = UploadJobSerializer(many=True)
    rejected = UploadRejectedSerializer(many=True)


class UploadRefusedSerializer(UploadResultSerializer):
    detail = serializers.CharField()


class EventPhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    status = serializers.CharField()
    faces = serializers.IntegerField()
    error = serializers.CharField()


class JoinSerializer(serializers.Serializer):
    code = serializers.CharField()


class GuestCreatedSerializer(TokenSerializer):
    event = EventSerializer()


class EmailSerializer(serializers.Serializer):
    email = serializers.EmailField()


class NotificationsSerializer(serializers.Serializer):
    email = serializers.CharField(allow_blank=True, help_text=_("Where sign-in links and alerts go; empty for none."))
    alerts = serializers.BooleanField(help_text=_("Whether to email the guest when new photos of them arrive."))


class SelfieUploadSerializer(serializers.Serializer):
    selfie = serializers.FileField()
    consent = serializers.BooleanField(
        required=False, default=True, help_text=_("Sending a selfie agrees to face matching; false refuses it.")
    )


class ChallengeSerializer(serializers.Serializer):
    nonce = serializers.CharField()
    poses = serializers.ListField(child=serializers.CharField())
    instructions = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()


class LiveSelfieUploadSerializer(serializers.Serializer):
    nonce = serializers.CharField()
    frames = serializers.ListField(child=serializers.FileField(), help_text=_("One picture per pose, in order."))


class LiveRefusedSerializer(ErrorSerializer):
    code = serializers.CharField()
    frame = serializers.IntegerField(allow_null=True)


class PhotoLinksSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    thumbnail_url = serializers.URLField()
    url = serializers.URLField()
    original_url = serializers.URLField()


class MyPhotoSerializer(PhotoLinksSerializer):
    similarity = serializers.FloatField()
    face_id = serializers.IntegerField()
    face_thumbnail_url = serializers.URLField()


class ReviewFaceSerializer(serializers.Serializer):
    photo_id = serializers.IntegerField()
    face_id = serializers.IntegerField()
    face_thumbnail_url = serializers.URLField()


class NotMeSerializer(serializers.Serializer):
    face_id = serializers.IntegerField(
        required=False, help_text=_("The face a review question showed, when you were not matched in the photo.")
    )


class JobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    photo_id = serializers.IntegerField()
    status = serializers.CharField()
    event = serializers.IntegerField()
    filename = serializers.CharField()
    attempts = serializers.IntegerField()
    error = serializers.CharField()
    faces = serializers.IntegerField()
    enqueued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


class QualityReportSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    faces_found = serializers.IntegerField()
    faces_matched = serializers.IntegerField()
    faces_unclaimed = serializers.IntegerField()
    unclaimed_groups = serializers.IntegerField()
    faces_unusable = serializers.IntegerField()
    faces_weak = serializers.IntegerField()
    matches = serializers.IntegerField()
    weak_matches = serializers.IntegerField()
    guests_with_selfie = serializers.IntegerField()
    answers_me = serializers.IntegerField(help_text=_("Guests' \"That's me\" answers, kept by the matching."))
    answers_not_me = serializers.IntegerField(help_text=_('Guests\' "Not me" answers, kept by the matching.'))
    guests_who_answered = serializers.IntegerField()
    weak_similarity = serializers.FloatField()


POSITIONS = ["top-left", "top-right", "center", "bottom-left", "bottom-right"]


class WatermarkSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    has_logo = serializers.BooleanField()
    position = serializers.ChoiceField(choices=POSITIONS)
    opacity = serializers.FloatField(help_text=_("0.05 to 1"))
    size = serializers.FloatField(help_text=_("The mark's width as a fraction of the photo's, 0.02 to 1"))
    guests_get_originals = serializers.BooleanField()
    active = serializers.BooleanField()
    version = serializers.IntegerField()


class WatermarkSavedSerializer(WatermarkSerializer):
    rerendering = serializers.BooleanField(help_text=_("The event's photos are being rendered again on the queue."))


class WatermarkChangeSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True)
    logo = serializers.FileField(required=False, help_text=_("A PNG logo (multipart only)."))
    clear_logo = serializers.BooleanField(required=False)
    position = serializers.ChoiceField(choices=POSITIONS, required=False)
    opacity = serializers.FloatField(required=False)
    size = serializers.FloatField(required=False)
    guests_get_originals = serializers.BooleanField(required=False)


# Not a class: a serializer's own `errors` attribute would hide the field.
WATERMARK_REFUSED = inline_serializer(
    "WatermarkRefused",
    {
        "detail": serializers.CharField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    photo_count = serializers.IntegerField()
    face_count = serializers.IntegerField()
    face_crop_url = serializers.URLField(allow_null=True)
    enrolled = serializers.BooleanField(help_text=_("A guest's selfie is in this group."))
    hidden = serializers.BooleanField(help_text=_("Never matched to a guest."))


class PersonFaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    photo_id = serializers.IntegerField()
    face_crop_url = serializers.URLField()


class PersonDetailSerializer(PersonSerializer):
    faces = PersonFaceSerializer(many=True)


class PersonEditSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["merge", "split", "hide", "show"])
    group = serializers.IntegerField(required=False, help_text=_("merge: the group whose faces join this one"))
    face = serializers.IntegerField(required=False, help_text=_("split: the face to move out"))


class FaceBoxSerializer(serializers.Serializer):
    left = serializers.FloatField()
    top = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()


class PhotoFaceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    box = FaceBoxSerializer(help_text=_("As fractions of the photo's width and height."))


class ThatsMeSerializer(serializers.Serializer):
    face_id = serializers.IntegerField(required=False, help_text=_("May be left out when the photo has one face."))


class FaceChoiceSerializer(ErrorSerializer):
    faces = PhotoFaceSerializer(many=True, required=False, help_text=_("The faces to choose from."))


class UsernameSerializer(serializers.Serializer):
    username = serializers.CharField()


class CoPhotographerSerializer(serializers.Serializer):
    username = serializers.CharField()
    added_at = serializers.DateTimeField()


class CoPhotographersSerializer(serializers.Serializer):
    owner = serializers.CharField()
    results = CoPhotographerSerializer(many=True)


FREE_FORM = OpenApiResponse(OpenApiTypes.OBJECT, description=_("A summary object; see the staff documentation."))

# --- The operations, per view ---------------------------------------------------

OPERATIONS: dict[str, dict[str, Any]] = {
    "gallery.api.TokenView": {
        "post": extend_schema(
            summary=_("Exchange a username and password for an API token"),
            request=CredentialsSerializer,
            responses={200: TokenSerializer, **errors(400, 429)},
            auth=[],
        )
    },
    "gallery.api.RegisterView": {
        "post": extend_schema(
            summary=_("Open an account and get its API token"),
            request=RegistrationSerializer,
            responses={201: TokenSerializer, **errors(400, 429)},
            auth=[],
        )
    },
    "gallery.api.LogoutView": {
        "post": extend_schema(
            summary=_("End the API token this request carries (or the session)"),
            request=None,
            responses={204: OpenApiResponse(description=_("The token no longer works.")), **errors(401)},
        )
    },
    "gallery.api.LogoutAllView": {
        "post": extend_schema(
            summary=_("End every API token of my account"),
            request=None,
            responses={
                204: OpenApiResponse(description=_("None of the account's tokens works any more.")),
                **errors(401),
            },
        )
    },
    "gallery.api.FaceDataView": {
        "delete": extend_schema(
            summary=_("Delete my face data (selfies, matches) and withdraw consent"),
            request=None,
            responses={200: FREE_FORM, **errors(401, 503)},
        )
    },
    "gallery.api.AccountView": {
        "delete": extend_schema(
            summary=_("Delete my account with its face data and tokens"),
            request=inline_serializer("AccountDeletion", {"password": serializers.CharField(required=False)}),
            responses={
                200: FREE_FORM,
                409: OpenApiResponse(ErrorSerializer, description=_("The account still owns events.")),
                **errors(400, 401, 503),
            },
        )
    },
    "gallery.api.PhotographerEventsView": {
        "get": extend_schema(
            summary=_("The photographer's events"),
            operation_id="photographer_events_list",
            responses={
                200: inline_serializer("PhotographerEventList", {"results": PhotographerEventSerializer(many=True)}),
                **errors(401, 403),
            },
        ),
        "post": extend_schema(
            summary=_("Create an event"),
            request=NewEventSerializer,
            responses={201: PhotographerEventSerializer, **errors(400, 401, 403)},
        ),
    },
    "gallery.api.PhotographerEventView": {
        "get": extend_schema(
            summary=_("An event's join code, link and photo counts"),
            description=_("For the event's owner and co-photographers."),
            responses={200: PhotographerEventDetailSerializer, **errors(401, 403, 404)},
        ),
        "delete": extend_schema(
            summary=_("Delete the event with its photos, faces and files (owner only)"),
            responses={204: None, **errors(401, 403, 404, 503)},
        ),
    },
    "gallery.api.UploadPhotosView": {
        "post": extend_schema(
            summary=_("Upload photos to an event (its owner or a co-photographer)"),
            description=_(
                "Multipart, one part named `photos` per file. Each file gets a verdict naming its `index`: "
                "in `jobs` if it is now a photo of the event (or already was: `duplicate`), in `rejected` "
                "with the reason otherwise. 202 when at least one file was accepted, 400 when none was."
            ),
            request={"multipart/form-data": UploadSerializer},
            responses={
                202: UploadResultSerializer,
                400: OpenApiResponse(UploadRefusedSerializer, description=_("No file was acceptable.")),
                **errors(401, 403, 404, 429, 503),
            },
        )
    },
    "gallery.api.EventPhotosView": {
        "get": extend_schema(
            summary=_("An event's photos and their processing status, newest first"),
            parameters=[
                PAGE,
                OpenApiParameter("status", OpenApiTypes.STR, enum=["queued", "processing", "done", "failed"]),
            ],
            responses={200: paginated("EventPhotoPage", EventPhotoSerializer(many=True)), **errors(400, 401, 403, 404)},
        )
    },
    "gallery.api.EventQualityView": {
        "get": extend_schema(
            summary=_("How well the event's faces could be matched"),
            responses={200: QualityReportSerializer, **errors(401, 403, 404)},
        )
    },
    "gallery.api.EventWatermarkView": {
        "get": extend_schema(
            summary=_("The event's watermark (owner only)"),
            responses={200: WatermarkSerializer, **errors(401, 403, 404)},
        ),
        "put": extend_schema(
            summary=_("Change the event's watermark (owner only); fields left out keep their value"),
            request={"application/json": WatermarkChangeSerializer, "multipart/form-data": WatermarkChangeSerializer},
            responses={
                200: WatermarkSavedSerializer,
                400: OpenApiResponse(WATERMARK_REFUSED, description=_("A field is invalid; `errors` per field.")),
                **errors(401, 403, 404),
            },
        ),
    },
    "gallery.api.EventPeopleView": {
        "get": extend_schema(
            summary=_("The event's people: face groups, largest first (owner only)"),
            operation_id="photographer_events_people_list",
            parameters=[PAGE],
            responses={200: paginated("PeoplePage", PersonSerializer(many=True)), **errors(401, 403, 404)},
        )
    },
    "gallery.api.EventPersonView": {
        "get": extend_schema(
            summary=_("One face group with its faces (owner only)"),
            responses={200: PersonDetailSerializer, **errors(401, 403, 404)},
        ),
        "post": extend_schema(
            summary=_("Merge, split, hide or show a face group (owner only)"),
            request=PersonEditSerializer,
            responses={200: PersonSerializer, **errors(400, 401, 403, 404)},
        ),
    },
    "gallery.api.JoinEventView": {
        "post": extend_schema(
            summary=_("Join an event with its code"),
            request=JoinSerializer,
            responses={200: inline_serializer("Joined", {"event": EventSerializer()}), **errors(400, 401, 404)},
        )
    },
    "gallery.api.GuestView": {
        "post": extend_schema(
            summary=_("Join an event as a guest without a password: a new account and its token"),
            request=JoinSerializer,
            responses={201: GuestCreatedSerializer, **errors(400, 404, 429)},
            auth=[],
        )
    },
    "gallery.api.SignInLinkView": {
        "post": extend_schema(
            summary=_("Email a sign-in link to the account with this address, if there is one"),
            description=_("The same 202 answer whether or not an account has the address."),
            request=EmailSerializer,
            responses={202: MessageSerializer, **errors(400, 429)},
            auth=[],
        )
    },
    "gallery.api.NotificationsView": {
        "get": extend_schema(
            summary=_("The caller's email address and photo alerts"),
            responses={200: NotificationsSerializer, **errors(401)},
        ),
        "put": extend_schema(
            summary=_("Set the caller's email address and photo alerts"),
            request=NotificationsSerializer,
            responses={200: NotificationsSerializer, **errors(400, 401)},
        ),
    },
    "gallery.api.SelfieView": {
        "post": extend_schema(
            summary=_("Send a selfie, the reference face for my photos"),
            request={"multipart/form-data": SelfieUploadSerializer},
            responses={
                200: inline_serializer("SelfieResult", {"faces_found": serializers.IntegerField()}),
                **errors(400, 401, 503),
            },
        )
    },
    "gallery.api.SelfieChallengeView": {
        "post": extend_schema(
            summary=_("Start a live selfie: the poses to take"),
            request=None,
            responses={200: ChallengeSerializer, **errors(400, 401, 429)},
        )
    },
    "gallery.api.LiveSelfieView": {
        "post": extend_schema(
            summary=_("Answer a live selfie challenge with one picture per pose"),
            request={"multipart/form-data": LiveSelfieUploadSerializer},
            responses={
                200: inline_serializer("LiveVerified", {"verified": serializers.BooleanField()}),
                400: OpenApiResponse(LiveRefusedSerializer, description=_("Not verified; `code` says why.")),
                **errors(401, 429, 503),
            },
        )
    },
    "gallery.api.MyPhotosView": {
        "get": extend_schema(
            summary=_("The photos the attendee is in, best match first"),
            parameters=[EVENT_QUERY],
            responses={
                200: inline_serializer(
                    "MyPhotos",
                    {
                        "event": serializers.IntegerField(),
                        "photos": MyPhotoSerializer(many=True),
                        "review": ReviewFaceSerializer(
                            many=True,
                            help_text=_(
                                "Up to three faces to ask 'Is this you?' about, in order: answer with "
                                "photos/{id}/me or photos/{id}/not-me and the face_id."
                            ),
                        ),
                        "live_selfie_required": serializers.BooleanField(),
                    },
                ),
                **errors(400, 401, 404, 429),
            },
        )
    },
    "gallery.api.AllPhotosView": {
        "get": extend_schema(
            summary=_("The event's photos the attendee may browse, newest first"),
            parameters=[EVENT_QUERY, PAGE],
            responses={
                200: paginated("AllPhotosPage", PhotoLinksSerializer(many=True), event=serializers.IntegerField()),
                **errors(400, 401, 404),
            },
        )
    },
    "gallery.api.EventPhotographersView": {
        "get": extend_schema(
            summary=_("The event's owner and co-photographers"),
            responses={200: CoPhotographersSerializer, **errors(401, 403, 404)},
        ),
        "post": extend_schema(
            summary=_("Add a co-photographer to the event (owner only)"),
            description=_("Co-photographers may upload and see the event's photos and progress, not change it."),
            request=UsernameSerializer,
            responses={
                201: CoPhotographerSerializer,
                200: OpenApiResponse(CoPhotographerSerializer, description=_("Already a co-photographer.")),
                **errors(400, 401, 403, 404),
            },
        ),
    },
    "gallery.api.EventPhotographerView": {
        "delete": extend_schema(
            summary=_("Remove a co-photographer from the event (owner only)"),
            responses={204: None, **errors(401, 403, 404)},
        )
    },
    "gallery.api.PhotoNotMeView": {
        "post": extend_schema(
            summary=_("Not me: the photo leaves my photos for good"),
            request=NotMeSerializer,
            responses={204: None, **errors(400, 401, 403, 404)},
        ),
        "delete": extend_schema(
            summary=_("Undo a not me"),
            responses={204: None, **errors(401, 403, 404)},
        ),
    },
    "gallery.api.PhotoMeView": {
        "post": extend_schema(
            summary=_("That's me: this face in the photo is mine"),
            request=ThatsMeSerializer,
            responses={
                204: None,
                400: OpenApiResponse(FaceChoiceSerializer, description=_("Say which face, from `faces`.")),
                **errors(401, 403, 404),
            },
        )
    },
    "processing.api.QueueStatsView": {
        "get": extend_schema(summary=_("Queue statistics"), responses={200: FREE_FORM, **errors(401, 403)})
    },
    "processing.api.JobView": {
        "get": extend_schema(summary=_("One photo's job"), responses={200: JobSerializer, **errors(401, 403, 404)})
    },
    "processing.api.RetryJobView": {
        "post": extend_schema(
            summary=_("Queue a failed job again"),
            request=None,
            responses={200: JobSerializer, **errors(400, 401, 403, 404)},
        )
    },
    "processing.api.ClearCacheView": {
        "post": extend_schema(
            summary=_("Clear the cache"), request=None, responses={200: MessageSerializer, **errors(401, 403)}
        )
    },
    "processing.api.AwsMetricsView": {
        "get": extend_schema(summary=_("Face-service usage"), responses={200: FREE_FORM, **errors(401, 403)})
    },
    "processing.api.AwsCostsView": {
        "get": extend_schema(
            summary=_("Estimated face-service costs"),
            parameters=[OpenApiParameter("days", OpenApiTypes.INT, description=_("1 to 366, 30 by default."))],
            responses={200: FREE_FORM, **errors(400, 401, 403)},
        )
    },
}


def _describe(target: str, operations: dict[str, Any]) -> None:
    """Register an extension that documents the view class at dotted path `target`."""

    def view_replacement(self: OpenApiViewExtension) -> type:
        view: type = self.target
        documented = type(view.__name__, (view,), {"__doc__": view.__doc__})
        return extend_schema_view(**operations)(documented)

    # Subclassing registers the extension; drf-spectacular imports `target` when it generates.
    type(
        f"Describe{target.rsplit('.', 1)[1]}",
        (OpenApiViewExtension,),
        {"target_class": target, "view_replacement": view_replacement},
    )


for _target, _operations in OPERATIONS.items():
    _describe(_target, _operations)


class SelfHostedSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI from this site's static files, with its start-up script as a separate request."""

    template_name = "api/docs.html"
    title = "photoevent API"


urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SelfHostedSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
