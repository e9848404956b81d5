"""The AWS Rekognition face backend (FACE_BACKEND=rekognition).

Storage at AWS: one collection per event, ``<prefix><event id>``, created on
first use and deleted with the event. It holds

- every indexed face of the event's photos, ExternalImageId = photo id; the
  FaceId is kept in ``Face.external_id``;
- the selfie face of every member who joined the event with a selfie,
  ExternalImageId ``selfie-<user id>``, indexed when the selfie is matched
  against the event (``match_reference``) and tracked in
  ``RekognitionSelfieFace`` so that it can be deleted;
- one Rekognition *user* per attendee, UserId ``user-<user id>``: a user
  vector built from the attendee's selfie face and the photo faces matched to
  them with high similarity (or confirmed by them), at most 100 faces.

Matching runs both ways and is materialised in our Match table by the
pipeline, so a my-photos page view costs no Rekognition call:

- a new photo: ``SearchUsers`` per new FaceId. A face is compared with each
  attendee's user vector, not with every stored face, so an attendee's own
  earlier faces cannot crowd their selfie out of the results (``SearchFaces``
  returned only the most similar faces of the whole collection);
- a new selfie or a new member: ``SearchFacesByImage`` with the selfie finds
  the event's faces (FaceIds map back to our Face rows). When the selfie
  replaces an earlier one, ``SearchUsersByImage`` first checks that the
  attendee's user vector still is this face; if not, the user is rebuilt
  from the new selfie.

Faces matched with a similarity of at least AUTO_ASSOCIATE_SIMILARITY join
the attendee's user until it holds AUTO_ASSOCIATE_MAX_FACES (``AssociateFaces``,
at most 100 FaceIds a call and 100 faces a user); faces the attendee confirms
join it too (``remember_match``); "not me" takes a face out again (``forget_match`` →
``DisassociateFaces``). A face associated with a user cannot be deleted, so
deletions disassociate such faces first. Forgetting an attendee's last selfie
deletes their user in every collection (``DeleteUser``). Faces left at AWS by
a job that died between IndexFaces and saving are deleted by the periodic
sweep (``processing.sweep``).

Errors: throttling and failed connections are retried here with backoff (each
attempt takes a fresh concurrency slot) and then raised as
``TransientBackendError`` for the queue's own retry; rejected credentials,
missing permissions and bad input raise ``PermanentBackendError`` with the
reason, so the job fails fast and says why. Every call goes through
`RekognitionBackend.call`, so the concurrency limit and the metrics cover all
of them.

boto3 and botocore are imported lazily: the web app never loads them unless
this backend is in use.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from PIL import Image

from gallery.models import Face, Match, Membership, Selfie
from processing.backoff import backoff_delay
from processing.costs import billed_images
from processing.images import open_upright
from processing.metrics import face_call
from processing.models import RekognitionSelfieFace

from .base import (
    BackendError,
    DetectedFace,
    FaceBackend,
    FaceMatch,
    IndexResult,
    NewFaceMatch,
    NoFaceError,
    PermanentBackendError,
    Reference,
    TransientBackendError,
)

if TYPE_CHECKING:
    from gallery.models import Event, Photo

logger = logging.getLogger("processing.rekognition")

# Rekognition's limit for image bytes sent inline (not from S3).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# DeleteFaces accepts at most this many FaceIds per call, and ListFaces and
# ListCollections return at most this many per page.
DELETE_BATCH = 4096
LIST_PAGE = 4096
# ListUsers returns at most this many per page.
USER_PAGE = 500
# AssociateFaces and DisassociateFaces accept at most this many FaceIds per call.
ASSOCIATE_BATCH = 100
# AWS keeps at most this many faces in one user; AssociateFaces past it
# answers ServiceQuotaExceededException.
USER_FACE_LIMIT = 100
# A photo face matched to an attendee at least this similar (percent) joins
# their user vector. Well above the match threshold: a wrong face in the
# vector would draw in more wrong faces.
AUTO_ASSOCIATE_SIMILARITY = 95.0
# Automatic associations stop once a user holds this many faces: each
# AssociateFaces call is a billed image, and a vector of a selfie and 20
# photo faces already covers the poses and lights of one event. Faces the
# attendee confirms are still associated, up to USER_FACE_LIMIT.
AUTO_ASSOCIATE_MAX_FACES = 20
# How long the per-user notes ("full", faces associated) are kept in the cache.
USER_NOTE_SECONDS = 30 * 24 * 3600
SELFIE_PREFIX = "selfie-"
USER_PREFIX = "user-"

THROTTLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "LimitExceededException", "TooManyRequests"}
)
SERVER_CODES = frozenset({"InternalServerError", "ServiceUnavailableException", "ServiceUnavailable"})
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
    }
)
BAD_INPUT_CODES = frozenset({"InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException"})
# Calls whose repetition after a read timeout does no harm: they change nothing,
# or a second run finds the work done (already exists / not found is handled).
IDEMPOTENT = frozenset(
    {
        "SearchFaces",
        "SearchFacesByImage",
        "SearchUsers",
        "SearchUsersByImage",
        "DetectFaces",
        "DeleteFaces",
        "ListFaces",
        "ListUsers",
        "CreateCollection",
        "DeleteCollection",
        "ListCollections",
        "DescribeCollection",
        # A second association of an associated face is ignored, a second
        # disassociation finds nothing to do, and a second CreateUser or
        # DeleteUser answers "exists" / "not found", which are handled.
        "AssociateFaces",
        "DisassociateFaces",
        "CreateUser",
        "DeleteUser",
    }
)
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


class RetryableError(TransientBackendError):
    """A failure worth retrying at once (after a short backoff) in this process."""


class ThrottledError(RetryableError):
    """Rekognition refused the call for its rate limit."""


class ResourceNotFound(BackendError):
    """The event's collection, or the attendee's user in it, does not exist (yet, or any more)."""


class ResourceExists(BackendError):
    """CreateCollection or CreateUser found the collection or the user already there."""


class QuotaExceeded(BackendError):
    """A fixed AWS limit was reached, e.g. 100 faces in one user."""


# --- Client ------------------------------------------------------------------

_client: Any = None
_client_pid = 0
_client_lock = threading.Lock()


def build_client(
    *,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    max_attempts: int | None = None,
) -> Any:
    """A Rekognition client with explicit timeouts and botocore's "standard" retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - requirements.txt has boto3
        raise PermanentBackendError("FACE_BACKEND=rekognition needs boto3 (pip install boto3)") from exc

    session = boto3.session.Session(region_name=settings.AWS_REGION or None)
    region = session.region_name
    if not region:
        raise PermanentBackendError("No AWS region for Rekognition: set AWS_REGION")
    known = {r for p in session.get_available_partitions() for r in session.get_available_regions("rekognition", p)}
    if known and region not in known:
        raise PermanentBackendError(f"Rekognition is not available in AWS region {region!r}; check AWS_REGION")
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout if connect_timeout is not None else settings.AWS_CONNECT_TIMEOUT,
        read_timeout=read_timeout if read_timeout is not None else settings.AWS_READ_TIMEOUT,
        retries={
            "mode": "standard",
            "max_attempts": max_attempts if max_attempts is not None else settings.AWS_BOTO_MAX_ATTEMPTS,
        },
        # Enough pooled connections for every slot this process may hold.
        max_pool_connections=max(10, settings.AWS_CONCURRENT_REQUESTS),
    )
    return session.client("rekognition", config=config)


def rekognition_client() -> Any:
    """The process's client, built once (and again in a forked child)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _client_lock:
            if _client is None or _client_pid != os.getpid():
                _client = build_client()
                _client_pid = os.getpid()
    return _client


# --- Helpers -----------------------------------------------------------------


def encode_image(image: Image.Image, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """`image` as JPEG bytes under `limit`: lower quality first, then smaller.

    Boxes come back relative to the image, so a smaller copy still gives
    boxes for the original analysis-size image.
    """
    current = image if image.mode == "RGB" else image.convert("RGB")
    quality = 90
    while True:
        buffer = io.BytesIO()
        current.save(buffer, "JPEG", quality=quality)
        data = buffer.getvalue()
        if len(data) <= limit or max(current.size) <= 80:
            return data
        if quality > 60:
            quality -= 15
            continue
        current = current.resize(
            (max(1, int(current.width * 0.75)), max(1, int(current.height * 0.75))), Image.Resampling.LANCZOS
        )


def pixel_box(box: dict[str, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A relative Rekognition BoundingBox as (left, top, width, height) pixels inside the image."""
    left = min(max(round(box.get("Left", 0.0) * width), 0), width - 1)
    top = min(max(round(box.get("Top", 0.0) * height), 0), height - 1)
    right = min(max(round((box.get("Left", 0.0) + box.get("Width", 0.0)) * width), left + 1), width)
    bottom = min(max(round((box.get("Top", 0.0) + box.get("Height", 0.0)) * height), top + 1), height)
    return left, top, right - left, bottom - top


def detected_face(face: dict[str, Any], width: int, height: int, external_id: str) -> DetectedFace:
    """A Rekognition face (with relative BoundingBox and 0-100 Confidence) in image pixels."""
    left, top, box_width, box_height = pixel_box(face.get("BoundingBox", {}), width, height)
    return DetectedFace(
        left=left,
        top=top,
        width=box_width,
        height=box_height,
        confidence=float(face.get("Confidence", 100.0)) / 100,
        external_id=external_id,
    )


def selfie_external_id(user_id: int) -> str:
    return f"{SELFIE_PREFIX}{user_id}"


def selfie_user(external_image_id: str) -> int | None:
    """The attendee whose selfie face carries this ExternalImageId, or None for a photo face."""
    return _number_after(SELFIE_PREFIX, external_image_id)


def rekognition_user_id(user_id: int) -> str:
    """The Rekognition UserId of our attendee `user_id` (unique within a collection)."""
    return f"{USER_PREFIX}{user_id}"


def attendee_of(rekognition_user: str) -> int | None:
    """Our attendee id behind a Rekognition UserId, or None if it is not one of ours."""
    return _number_after(USER_PREFIX, rekognition_user)


def _number_after(prefix: str, value: str) -> int | None:
    if not value.startswith(prefix):
        return None
    try:
        return int(value[len(prefix) :])
    except ValueError:
        return None


def request_token() -> str:
    """A ClientRequestToken for one logical call: repeats of that call (our retries) reuse it."""
    return uuid.uuid4().hex


def batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")) or str(exc)


def translate_error(exc: Exception, operation: str) -> BackendError:
    """Our error for a botocore exception raised by `operation`."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        CredentialRetrievalError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    if isinstance(exc, ClientError):
        code, message = _code(exc), _message(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        if code in THROTTLE_CODES:
            return ThrottledError(f"Rekognition {operation} throttled ({code})")
        if code in SERVER_CODES or status >= 500:
            return RetryableError(f"Rekognition {operation} failed at AWS ({code or status}): {message}")
        if code in CREDENTIAL_CODES:
            return PermanentBackendError(
                f"AWS rejected Rekognition {operation} ({code}: {message}). Check the AWS credentials, "
                "their IAM permissions for Rekognition and AWS_REGION."
            )
        if code == "ResourceNotFoundException":
            return ResourceNotFound(message)
        if code == "ResourceAlreadyExistsException":
            return ResourceExists(message)
        if code == "ConflictException":
            if operation == "CreateUser":
                return ResourceExists(message)
            # The user is being updated by another call: worth repeating shortly.
            return RetryableError(f"Rekognition {operation} conflicts with a change in progress: {message}")
        if code == "ServiceQuotaExceededException":
            return QuotaExceeded(f"Rekognition {operation}: {message}")
        if code == "InvalidParameterException" and "face" in message.lower():
            return NoFaceError(message)
        if code in BAD_INPUT_CODES:
            return PermanentBackendError(f"Rekognition cannot use this image ({code}: {message})")
        return PermanentBackendError(f"Rekognition {operation} failed ({code}: {message})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return PermanentBackendError(f"No usable AWS credentials for Rekognition: {exc}")
    if isinstance(exc, NoRegionError):
        return PermanentBackendError("No AWS region for Rekognition: set AWS_REGION")
    if isinstance(exc, ParamValidationError):
        return PermanentBackendError(f"Invalid Rekognition {operation} request: {exc}")
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
        # The request may have been executed: repeat here only what changes nothing.
        if operation in IDEMPOTENT:
            return RetryableError(f"Rekognition {operation} timed out: {exc}")
        return TransientBackendError(f"Rekognition {operation} timed out: {exc}")
    if isinstance(exc, BotoConnectionError):
        # EndpointConnectionError, ConnectTimeoutError: the request never reached AWS.
        return RetryableError(f"Cannot reach Rekognition for {operation}: {exc}")
    return TransientBackendError(f"Rekognition {operation} failed: {type(exc).__name__}: {exc}")


# --- Backend -------------------------------------------------------------------


class RekognitionBackend(FaceBackend):
    name = "rekognition"

    def __init__(self, client: Any = None) -> None:
        # Tests pass a stubbed client; otherwise the process-wide one is used.
        self._client = client
        self._collections: set[str] = set()
        self._collections_lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else rekognition_client()

    def collection_id(self, event_id: int) -> str:
        return f"{settings.AWS_REKOGNITION_COLLECTION_PREFIX}{event_id}"

    def event_of(self, collection: str) -> int | None:
        """The event id of one of our collections, or None for another application's collection."""
        return _number_after(settings.AWS_REKOGNITION_COLLECTION_PREFIX, collection)

    # -- Calls -------------------------------------------------------------

    def call(self, operation: str, event_id: int | None, **params: Any) -> dict[str, Any]:
        """One Rekognition operation through the limiter and the metrics, with our retries.

        Raises a `BackendError` subclass, never a botocore exception.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self.client, _SNAKE.sub("_", operation).lower())
        images = billed_images(operation)
        attempts = settings.AWS_RETRY_MAX_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                with face_call(self.name, operation, event_id, images=images) as record:
                    try:
                        response: dict[str, Any] = method(**params)
                    except (ClientError, BotoCoreError) as exc:
                        error = translate_error(exc, operation)
                        record.throttled = isinstance(error, ThrottledError)
                        record.expected_error = isinstance(error, ResourceNotFound | ResourceExists)
                        raise error from exc
                    record.retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
                    record.faces_indexed = len(response.get("FaceRecords", []))
                    record.faces_matched = len(response.get("FaceMatches", [])) + len(response.get("UserMatches", []))
                    record.faces_deleted = len(response.get("DeletedFaces", []))
                    if operation in ("SearchFaces", "SearchFacesByImage", "SearchUsers", "SearchUsersByImage"):
                        record.faces_searched = 1
                    return response
            except RetryableError as exc:
                if attempt >= attempts:
                    raise TransientBackendError(f"{exc} (after {attempt} attempts)") from exc
                delay = backoff_delay(attempt, settings.AWS_RETRY_BASE_DELAY, cap=10.0)
                logger.info("%s; attempt %d of %d again in %.2fs", exc, attempt + 1, attempts, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def ensure_collection(self, event_id: int) -> str:
        """Create the event's collection unless this process already knows it exists."""
        collection = self.collection_id(event_id)
        if collection in self._collections:
            return collection
        try:
            self.call("CreateCollection", event_id, CollectionId=collection)
            logger.info("Created Rekognition collection %s", collection)
        except ResourceExists:
            pass
        with self._collections_lock:
            self._collections.add(collection)
        return collection

    def _index(self, event_id: int, **params: Any) -> dict[str, Any]:
        collection = self.ensure_collection(event_id)
        try:
            return self.call("IndexFaces", event_id, CollectionId=collection, **params)
        except ResourceNotFound:
            # Deleted behind this process's back: create it again, once.
            with self._collections_lock:
                self._collections.discard(collection)
            self.ensure_collection(event_id)
            return self.call("IndexFaces", event_id, CollectionId=collection, **params)

    def delete_faces(self, event_id: int, face_ids: Iterable[str]) -> int:
        """Delete FaceIds from the event's collection in batches; returns how many AWS deleted.

        AWS refuses to delete a face associated with a user: such faces are
        disassociated from their user, then deleted.
        """
        ids = sorted({face_id for face_id in face_ids if face_id})
        collection = self.collection_id(event_id)
        deleted = 0
        for batch in batches(ids, DELETE_BATCH):
            try:
                response = self.call("DeleteFaces", event_id, CollectionId=collection, FaceIds=batch)
                deleted += len(response.get("DeletedFaces", []))
                held: dict[str, list[str]] = {}
                for refused in response.get("UnsuccessfulFaceDeletions", []):
                    if "ASSOCIATED_TO_AN_EXISTING_USER" in refused.get("Reasons", []) and refused.get("UserId"):
                        held.setdefault(refused["UserId"], []).append(refused["FaceId"])
                if not held:
                    continue
                for user, user_faces in sorted(held.items()):
                    self._disassociate(event_id, user, user_faces)
                again = sorted(face for user_faces in held.values() for face in user_faces)
                response = self.call("DeleteFaces", event_id, CollectionId=collection, FaceIds=again)
                deleted += len(response.get("DeletedFaces", []))
            except ResourceNotFound:
                return deleted
        return deleted

    def list_collections(self) -> list[str]:
        """Every collection of ours in the account (ListCollections, paginated)."""
        collections: list[str] = []
        token = ""
        while True:
            params: dict[str, Any] = {"MaxResults": LIST_PAGE}
            if token:
                params["NextToken"] = token
            response = self.call("ListCollections", None, **params)
            collections += [c for c in response.get("CollectionIds", []) if self.event_of(c) is not None]
            token = response.get("NextToken", "")
            if not token:
                return collections

    def list_faces(self, event_id: int) -> dict[str, str]:
        """Every face in the event's collection (ListFaces, paginated): FaceId → UserId ("" if none).

        Empty if the collection does not exist.
        """
        faces: dict[str, str] = {}
        token = ""
        while True:
            params: dict[str, Any] = {"CollectionId": self.collection_id(event_id), "MaxResults": LIST_PAGE}
            if token:
                params["NextToken"] = token
            try:
                response = self.call("ListFaces", event_id, **params)
            except ResourceNotFound:
                return faces
            for face in response.get("Faces", []):
                faces[face["FaceId"]] = face.get("UserId", "")
            token = response.get("NextToken", "")
            if not token:
                return faces

    def list_users(self, event_id: int) -> list[str]:
        """Every user (Rekognition UserId) in the event's collection (ListUsers, paginated).

        Empty if the collection does not exist.
        """
        users: list[str] = []
        token = ""
        while True:
            params: dict[str, Any] = {"CollectionId": self.collection_id(event_id), "MaxResults": USER_PAGE}
            if token:
                params["NextToken"] = token
            try:
                response = self.call("ListUsers", event_id, **params)
            except ResourceNotFound:
                return users
            users += [user["UserId"] for user in response.get("Users", [])]
            token = response.get("NextToken", "")
            if not token:
                return users

    # -- Users -------------------------------------------------------------

    def _user_note(self, kind: str, event_id: int, user: str) -> str:
        """Cache key of a note about a user: "full" (AWS refused more faces), "faces" (how many we associated).

        Notes only spare calls: a lost note costs a call, never a wrong result.
        """
        return f"rekognition-user-{kind}:{self.collection_id(event_id)}:{user}"

    def _forget_user_notes(self, event_id: int, user: str) -> None:
        cache.delete_many([self._user_note("full", event_id, user), self._user_note("faces", event_id, user)])

    def faces_associated(self, event_id: int, user_id: int) -> int:
        """How many faces this application associated with the attendee's user, as far as the cache knows."""
        return int(cache.get(self._user_note("faces", event_id, rekognition_user_id(user_id))) or 0)

    def _count_associated(self, event_id: int, user: str, count: int) -> None:
        key = self._user_note("faces", event_id, user)
        cache.add(key, 0, USER_NOTE_SECONDS)
        try:
            cache.incr(key, count)
        except ValueError:
            # Evicted between add and incr.
            cache.set(key, count, USER_NOTE_SECONDS)

    def ensure_user(self, event_id: int, user_id: int) -> bool:
        """Create the attendee's user in the event's collection unless it exists.

        False when the collection itself does not exist.
        """
        try:
            self.call(
                "CreateUser",
                event_id,
                CollectionId=self.collection_id(event_id),
                UserId=rekognition_user_id(user_id),
                ClientRequestToken=request_token(),
            )
        except ResourceExists:
            pass
        except ResourceNotFound:
            return False
        except QuotaExceeded as exc:
            logger.warning("No user for attendee %s in event %s: %s", user_id, event_id, exc)
            return False
        return True

    def delete_user(self, event_id: int, user_id: int) -> None:
        """Delete the attendee's user from the event's collection; its faces stay, disassociated."""
        user = rekognition_user_id(user_id)
        # Not found: no such user (or collection), which is the wanted state.
        with contextlib.suppress(ResourceNotFound):
            self.call(
                "DeleteUser",
                event_id,
                CollectionId=self.collection_id(event_id),
                UserId=user,
                ClientRequestToken=request_token(),
            )
        self._forget_user_notes(event_id, user)

    def associate(self, event_id: int, user_id: int, face_ids: Iterable[str], *, threshold: float) -> list[str]:
        """Associate FaceIds with the attendee's user, creating the user if it does not exist yet.

        `threshold` (percent) is AWS's UserMatchThreshold: a face less similar
        to a user that already has faces is refused. Returns the FaceIds AWS
        associated now. A full user (100 faces) is noted, and further calls
        for it are skipped until a face leaves it.
        """
        ids = sorted({face_id for face_id in face_ids if face_id})
        user = rekognition_user_id(user_id)
        marker = self._user_note("full", event_id, user)
        if not ids or cache.get(marker):
            return []
        associated: list[str] = []
        for batch in batches(ids, ASSOCIATE_BATCH):
            try:
                try:
                    response = self._associate_batch(event_id, user, batch, threshold)
                except ResourceNotFound:
                    # The user does not exist yet (or the collection is gone).
                    if not self.ensure_user(event_id, user_id):
                        return associated
                    response = self._associate_batch(event_id, user, batch, threshold)
            except QuotaExceeded as exc:
                logger.info("User of attendee %s in event %s is full: %s", user_id, event_id, exc)
                cache.set(marker, 1, USER_NOTE_SECONDS)
                return associated
            added = [face["FaceId"] for face in response.get("AssociatedFaces", [])]
            self._count_associated(event_id, user, len(added))
            associated += added
            for refused in response.get("UnsuccessfulFaceAssociations", []):
                logger.debug("Face %s not associated with %s: %s", refused.get("FaceId"), user, refused.get("Reasons"))
        return associated

    def _associate_batch(self, event_id: int, user: str, face_ids: list[str], threshold: float) -> dict[str, Any]:
        return self.call(
            "AssociateFaces",
            event_id,
            CollectionId=self.collection_id(event_id),
            UserId=user,
            FaceIds=face_ids,
            UserMatchThreshold=threshold,
            ClientRequestToken=request_token(),
        )

    def _disassociate(self, event_id: int, user: str, face_ids: Iterable[str]) -> int:
        """Take FaceIds out of a user (a Rekognition UserId); returns how many AWS disassociated."""
        ids = sorted({face_id for face_id in face_ids if face_id})
        done = 0
        for batch in batches(ids, ASSOCIATE_BATCH):
            try:
                response = self.call(
                    "DisassociateFaces",
                    event_id,
                    CollectionId=self.collection_id(event_id),
                    UserId=user,
                    FaceIds=batch,
                    ClientRequestToken=request_token(),
                )
            except ResourceNotFound:
                # No such user (or collection): nothing is associated.
                break
            done += len(response.get("DisassociatedFaces", []))
        if done:
            # Room again; the count restarts, bounded by AWS's own limit.
            self._forget_user_notes(event_id, user)
        return done

    def _associate_close_matches(self, event_id: int, best: dict[str, tuple[int, float]]) -> None:
        """Add faces matched at AUTO_ASSOCIATE_SIMILARITY or more to their attendee's user.

        `best` maps a FaceId to its closest attendee and the similarity
        (percent). Only until the user holds AUTO_ASSOCIATE_MAX_FACES faces,
        the closest first. Best effort: the matches stand without it, so a
        failure is logged and does not fail the job.
        """
        by_user: dict[int, list[tuple[float, str]]] = {}
        for face_id, (user_id, similarity) in best.items():
            if similarity >= AUTO_ASSOCIATE_SIMILARITY:
                by_user.setdefault(user_id, []).append((similarity, face_id))
        for user_id, candidates in sorted(by_user.items()):
            room = AUTO_ASSOCIATE_MAX_FACES - self.faces_associated(event_id, user_id)
            face_ids = [face_id for _, face_id in sorted(candidates, reverse=True)[: max(room, 0)]]
            if not face_ids:
                continue
            try:
                self.associate(event_id, user_id, face_ids, threshold=AUTO_ASSOCIATE_SIMILARITY)
            except BackendError as exc:
                logger.warning("Faces not added to the user of attendee %s in event %s: %s", user_id, event_id, exc)

    # -- Interface ---------------------------------------------------------

    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        width, height = image.size
        try:
            response = self._index(
                photo.event_id,
                Image={"Bytes": encode_image(image)},
                ExternalImageId=str(photo.pk),
                MaxFaces=settings.AWS_REKOGNITION_MAX_FACES,
                QualityFilter=settings.AWS_REKOGNITION_QUALITY_FILTER,
                DetectionAttributes=["DEFAULT"],
            )
        except NoFaceError:
            # A photo without faces is a finished photo with no faces.
            return IndexResult(faces=[])
        faces = [
            detected_face(record["Face"], width, height, record["Face"]["FaceId"])
            for record in response.get("FaceRecords", [])
        ]
        reasons = [",".join(u.get("Reasons", [])) or "UNKNOWN" for u in response.get("UnindexedFaces", [])]
        return IndexResult(faces=faces, unindexed_reasons=reasons)

    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        # DetectFaces stores nothing: the selfie is indexed into each event's
        # collection when it is matched there (match_reference).
        width, height = image.size
        response = self.call("DetectFaces", None, Image={"Bytes": encode_image(image)}, Attributes=["DEFAULT"])
        faces = [
            detected_face(detail, width, height, selfie_external_id(selfie.user_id))
            for detail in response.get("FaceDetails", [])
        ]
        if not faces:
            raise NoFaceError("No face found in the selfie")
        return max(faces, key=lambda f: f.area), len(faces)

    def match_faces(
        self, event: Event, photo: Photo, faces: Sequence[DetectedFace], references: Sequence[Reference]
    ) -> list[NewFaceMatch]:
        """`SearchUsers` per new face: which attendees' user vectors each face resembles.

        The faces are not stored yet: AWS knows them by FaceId (``external_id``),
        the pipeline by their position in `faces`.
        """
        users = {reference.user_id for reference in references}
        if not users:
            # Nobody to find: no call at all.
            return []
        collection = self.collection_id(event.pk)
        matches = []
        closest: dict[str, tuple[int, float]] = {}
        for index, face in enumerate(faces):
            if not face.external_id:
                continue
            try:
                response = self.call(
                    "SearchUsers",
                    event.pk,
                    CollectionId=collection,
                    FaceId=face.external_id,
                    UserMatchThreshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                    MaxUsers=min(settings.AWS_REKOGNITION_SEARCH_MAXFACES, 500),
                )
            except ResourceNotFound:
                return []
            except NoFaceError as exc:
                # The FaceId is no longer in the collection (deleted meanwhile).
                logger.warning("Face %s not searched in event %s: %s", face.external_id, event.pk, exc)
                continue
            for hit in response.get("UserMatches", []):
                user_id = attendee_of(hit.get("User", {}).get("UserId", ""))
                if user_id is None or user_id not in users:
                    continue
                similarity = float(hit.get("Similarity", 0.0))
                matches.append(NewFaceMatch(user_id=user_id, face_index=index, similarity=similarity / 100))
                if similarity > closest.get(face.external_id, (0, -1.0))[1]:
                    closest[face.external_id] = (user_id, similarity)
        self._associate_close_matches(event.pk, closest)
        return matches

    def match_reference(self, event: Event, reference: Reference) -> list[FaceMatch]:
        has_faces = Face.objects.filter(event=event).exclude(external_id="").exists()
        best: dict[str, float] = {}
        for selfie in reference.selfies:
            data = self._selfie_bytes(selfie)
            self._index_selfie(event, selfie, data)
            if not has_faces:
                # An event without indexed faces cannot match: save the search.
                continue
            try:
                response = self.call(
                    "SearchFacesByImage",
                    event.pk,
                    CollectionId=self.collection_id(event.pk),
                    Image={"Bytes": data},
                    MaxFaces=settings.AWS_REKOGNITION_SELFIE_SEARCH_MAXFACES,
                    FaceMatchThreshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                )
            except (ResourceNotFound, NoFaceError) as exc:
                logger.warning("Selfie %s not searched in event %s: %s", selfie.pk, event.pk, exc)
                continue
            for hit in response.get("FaceMatches", []):
                face = hit.get("Face", {})
                if selfie_user(face.get("ExternalImageId", "")) is not None:
                    continue
                similarity = float(hit.get("Similarity", 0.0))
                if similarity > best.get(face["FaceId"], -1.0):
                    best[face["FaceId"]] = similarity
        if not best:
            return []
        stored = Face.objects.filter(event=event, external_id__in=list(best)).only("id", "photo_id", "external_id")
        matches = [_face_match(reference.user_id, face, best[face.external_id]) for face in stored]
        # Faces already matched this closely were associated then: a refresh adds only new ones.
        associated_before = set(
            Match.objects.filter(
                event=event, user_id=reference.user_id, similarity__gte=AUTO_ASSOCIATE_SIMILARITY / 100
            ).values_list("face__external_id", flat=True)
        )
        self._associate_close_matches(
            event.pk,
            {
                face.external_id: (reference.user_id, best[face.external_id])
                for face in stored
                if face.external_id not in associated_before
            },
        )
        return matches

    def remember_match(self, event: Event, user_id: int, faces: Sequence[Face]) -> int:
        """The attendee confirmed these faces are theirs: add them to their user vector (AssociateFaces).

        Idempotent; returns how many faces AWS associated now.
        """
        associated = self.associate(
            event.pk,
            user_id,
            [face.external_id for face in faces],
            threshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
        )
        return len(associated)

    def forget_match(self, event: Event, user_id: int, faces: Sequence[Face]) -> int:
        """The attendee said "not me": take these faces out of their user vector (DisassociateFaces).

        Idempotent; returns how many faces AWS disassociated now.
        """
        return self._disassociate(event.pk, rekognition_user_id(user_id), [face.external_id for face in faces])

    def forget_faces(self, event: Event, faces: Sequence[Face]) -> None:
        self.delete_faces(event.pk, [face.external_id for face in faces if face.external_id])

    def forget_selfie(self, selfie: Selfie) -> None:
        """Delete the selfie's faces; with the attendee's last selfie, their user in every collection too.

        A selfie replaced by a newer one keeps the user: the next
        `match_reference` checks it against the new selfie. A selfie never
        indexed anywhere (no `RekognitionSelfieFace` row) has nothing at AWS,
        which also makes a second call for the same selfie free of calls.
        """
        if selfie.pk is None:
            return
        rows = list(RekognitionSelfieFace.objects.filter(selfie_id=selfie.pk))
        if not rows:
            return
        by_event: dict[int, list[str]] = {}
        for row in rows:
            by_event.setdefault(row.event_id, []).append(row.face_id)
        if not Selfie.objects.filter(user_id=selfie.user_id).exclude(pk=selfie.pk).exists():
            # The attendee is being forgotten. DeleteUser first: it disassociates
            # the user's faces, so the selfie faces can then be deleted directly.
            joined = set(Membership.objects.filter(user_id=selfie.user_id).values_list("event_id", flat=True))
            for event_id in sorted(joined | set(by_event)):
                self.delete_user(event_id, selfie.user_id)
        for event_id, face_ids in by_event.items():
            self.delete_faces(event_id, face_ids)
        RekognitionSelfieFace.objects.filter(pk__in=[row.pk for row in rows]).delete()

    def forget_event(self, event: Event) -> None:
        collection = self.collection_id(event.pk)
        try:
            self.call("DeleteCollection", event.pk, CollectionId=collection)
            logger.info("Deleted Rekognition collection %s", collection)
        except ResourceNotFound:
            pass
        with self._collections_lock:
            self._collections.discard(collection)

    # -- Selfies -----------------------------------------------------------

    def _selfie_bytes(self, selfie: Selfie) -> bytes:
        with selfie.image.open("rb") as stored:
            data: bytes = stored.read()
        if len(data) <= MAX_IMAGE_BYTES and data[:3] == b"\xff\xd8\xff":
            return data
        return encode_image(open_upright(io.BytesIO(data)))

    def _index_selfie(self, event: Event, selfie: Selfie, data: bytes) -> None:
        """Index the selfie into the event's collection once, as the first face of the attendee's user."""
        if RekognitionSelfieFace.objects.filter(selfie_id=selfie.pk, event=event).exists():
            return
        self._check_user_vector(event, selfie.user_id, data)
        response = self._index(
            event.pk,
            Image={"Bytes": data},
            ExternalImageId=selfie_external_id(selfie.user_id),
            # The largest face only: the one enrol_selfie chose.
            MaxFaces=1,
            QualityFilter=settings.AWS_REKOGNITION_QUALITY_FILTER,
            DetectionAttributes=["DEFAULT"],
        )
        records = response.get("FaceRecords", [])
        face_id = records[0]["Face"]["FaceId"] if records else ""
        if face_id:
            self.associate(event.pk, selfie.user_id, [face_id], threshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD)
        else:
            logger.warning(
                "Selfie %s has no indexable face for event %s: %s",
                selfie.pk,
                event.pk,
                [u.get("Reasons") for u in response.get("UnindexedFaces", [])],
            )
        try:
            with transaction.atomic():
                RekognitionSelfieFace.objects.create(selfie_id=selfie.pk, event=event, face_id=face_id)
        except IntegrityError:
            # Another process indexed the same selfie meanwhile; drop our copy.
            self.delete_faces(event.pk, [face_id])

    def _check_user_vector(self, event: Event, user_id: int, data: bytes) -> None:
        """Keep the attendee's user only if the new selfie is still that person (SearchUsersByImage).

        Only an attendee with matches in the event can have photo faces in
        their user; for anyone else there is nothing to check. A user built
        from another face is deleted, and rebuilt from this selfie.
        """
        if not Match.objects.filter(event=event, user_id=user_id).exists():
            return
        try:
            response = self.call(
                "SearchUsersByImage",
                event.pk,
                CollectionId=self.collection_id(event.pk),
                Image={"Bytes": data},
                UserMatchThreshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                MaxUsers=min(settings.AWS_REKOGNITION_SEARCH_MAXFACES, 500),
                QualityFilter=settings.AWS_REKOGNITION_QUALITY_FILTER,
            )
        except (ResourceNotFound, NoFaceError):
            return
        found = {attendee_of(hit.get("User", {}).get("UserId", "")) for hit in response.get("UserMatches", [])}
        if user_id not in found:
            logger.info("New selfie of attendee %s does not match their user in event %s: rebuilt", user_id, event.pk)
            self.delete_user(event.pk, user_id)


def _face_match(user_id: int, face: Face, similarity_percent: float) -> FaceMatch:
    """A match of `face` to attendee `user_id`; Rekognition's 0-100 similarity becomes 0-1."""
    return FaceMatch(user_id=user_id, face_id=face.pk, photo_id=face.photo_id, similarity=similarity_percent / 100)
