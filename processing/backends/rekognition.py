"""The AWS Rekognition face backend (FACE_BACKEND=rekognition).

Storage at AWS: one collection per event, ``<prefix><event id>``, created on
first use and deleted with the event. It holds

- every indexed face of the event's photos, ExternalImageId = photo id; the
  FaceId is kept in ``Face.external_id``;
- the selfie face of every member who joined the event with a selfie,
  ExternalImageId ``selfie-<user id>``, indexed when the selfie is matched
  against the event (``match_reference``) and tracked in
  ``RekognitionSelfieFace`` so that it can be deleted.

Matching runs both ways and is materialised in our Match table by the
pipeline, so a my-photos page view costs no Rekognition call:

- a new photo: ``SearchFaces`` per new FaceId in the event collection; hits
  whose ExternalImageId is the selfie of a member with a reference match;
- a new selfie or a new member: ``SearchFacesByImage`` with the selfie against
  the event collection; FaceIds map back to our Face rows.

Errors: throttling and failed connections are retried here with backoff (each
attempt takes a fresh concurrency slot) and then raised as
``TransientBackendError`` for the queue's own retry; rejected credentials,
missing permissions and bad input raise ``PermanentBackendError`` with the
reason, so the job fails fast and says why.

boto3 and botocore are imported lazily: the web app never loads them unless
this backend is in use.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from gallery.models import Face
from processing.backoff import backoff_delay
from processing.images import open_upright
from processing.metrics import BILLED_OPERATIONS, face_call
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
    from PIL import Image

    from gallery.models import Event, Photo, Selfie

logger = logging.getLogger("processing.rekognition")

# Rekognition's limit for image bytes sent inline (not from S3).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# DeleteFaces accepts at most this many FaceIds per call.
DELETE_BATCH = 4096
SELFIE_PREFIX = "selfie-"

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
        "DetectFaces",
        "DeleteFaces",
        "CreateCollection",
        "DeleteCollection",
        "ListCollections",
        "DescribeCollection",
    }
)
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


class RetryableError(TransientBackendError):
    """A failure worth retrying at once (after a short backoff) in this process."""


class ThrottledError(RetryableError):
    """Rekognition refused the call for its rate limit."""


class CollectionNotFound(BackendError):
    """The event's collection does not exist (yet, or any more)."""


class CollectionExists(BackendError):
    """CreateCollection found the collection already there."""


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
    from PIL import Image as PILImage

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
            (max(1, int(current.width * 0.75)), max(1, int(current.height * 0.75))), PILImage.Resampling.LANCZOS
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
    if not external_image_id.startswith(SELFIE_PREFIX):
        return None
    try:
        return int(external_image_id[len(SELFIE_PREFIX) :])
    except ValueError:
        return None


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
            return CollectionNotFound(message)
        if code == "ResourceAlreadyExistsException":
            return CollectionExists(message)
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

    # -- Calls -------------------------------------------------------------

    def call(self, operation: str, event_id: int | None, **params: Any) -> dict[str, Any]:
        """One Rekognition operation through the limiter and the metrics, with our retries.

        Raises a `BackendError` subclass, never a botocore exception.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self.client, _SNAKE.sub("_", operation).lower())
        images = 1 if operation in BILLED_OPERATIONS else 0
        attempts = settings.AWS_RETRY_MAX_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                with face_call(self.name, operation, event_id, images=images) as record:
                    try:
                        response: dict[str, Any] = method(**params)
                    except (ClientError, BotoCoreError) as exc:
                        error = translate_error(exc, operation)
                        record.throttled = isinstance(error, ThrottledError)
                        record.expected_error = isinstance(error, CollectionNotFound | CollectionExists)
                        raise error from exc
                    record.retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
                    record.faces_indexed = len(response.get("FaceRecords", []))
                    record.faces_matched = len(response.get("FaceMatches", []))
                    record.faces_deleted = len(response.get("DeletedFaces", []))
                    if operation in ("SearchFaces", "SearchFacesByImage"):
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
        except CollectionExists:
            pass
        with self._collections_lock:
            self._collections.add(collection)
        return collection

    def _index(self, event_id: int, **params: Any) -> dict[str, Any]:
        collection = self.ensure_collection(event_id)
        try:
            return self.call("IndexFaces", event_id, CollectionId=collection, **params)
        except CollectionNotFound:
            # Deleted behind this process's back: create it again, once.
            with self._collections_lock:
                self._collections.discard(collection)
            self.ensure_collection(event_id)
            return self.call("IndexFaces", event_id, CollectionId=collection, **params)

    def delete_faces(self, event_id: int, face_ids: Sequence[str]) -> int:
        """Delete FaceIds from the event's collection in batches; returns how many AWS deleted."""
        ids = sorted({face_id for face_id in face_ids if face_id})
        collection = self.collection_id(event_id)
        deleted = 0
        for start in range(0, len(ids), DELETE_BATCH):
            try:
                response = self.call(
                    "DeleteFaces", event_id, CollectionId=collection, FaceIds=ids[start : start + DELETE_BATCH]
                )
            except CollectionNotFound:
                return deleted
            deleted += len(response.get("DeletedFaces", []))
        return deleted

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
        users = {reference.user_id for reference in references}
        if not users:
            # Nobody to find: no call at all.
            return []
        collection = self.collection_id(event.pk)
        matches = []
        for index, face in enumerate(faces):
            if not face.external_id:
                continue
            try:
                response = self.call(
                    "SearchFaces",
                    event.pk,
                    CollectionId=collection,
                    FaceId=face.external_id,
                    MaxFaces=settings.AWS_REKOGNITION_SEARCH_MAXFACES,
                    FaceMatchThreshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
                )
            except CollectionNotFound:
                return []
            for hit in response.get("FaceMatches", []):
                user_id = selfie_user(hit.get("Face", {}).get("ExternalImageId", ""))
                if user_id in users:
                    matches.append(
                        NewFaceMatch(
                            user_id=user_id, face_index=index, similarity=float(hit.get("Similarity", 0.0)) / 100
                        )
                    )
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
            except (CollectionNotFound, NoFaceError) as exc:
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
        return [
            FaceMatch(
                user_id=reference.user_id,
                face_id=face.pk,
                photo_id=face.photo_id,
                similarity=best[face.external_id] / 100,
            )
            for face in stored
        ]

    def forget_faces(self, event: Event, faces: Sequence[Face]) -> None:
        self.delete_faces(event.pk, [face.external_id for face in faces if face.external_id])

    def forget_selfie(self, selfie: Selfie) -> None:
        if selfie.pk is None:
            return
        rows = list(RekognitionSelfieFace.objects.filter(selfie_id=selfie.pk))
        by_event: dict[int, list[str]] = {}
        for row in rows:
            by_event.setdefault(row.event_id, []).append(row.face_id)
        for event_id, face_ids in by_event.items():
            self.delete_faces(event_id, face_ids)
        RekognitionSelfieFace.objects.filter(pk__in=[row.pk for row in rows]).delete()

    def forget_event(self, event: Event) -> None:
        collection = self.collection_id(event.pk)
        try:
            self.call("DeleteCollection", event.pk, CollectionId=collection)
            logger.info("Deleted Rekognition collection %s", collection)
        except CollectionNotFound:
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
        """Index the selfie into the event's collection once, for matching future photos."""
        if RekognitionSelfieFace.objects.filter(selfie_id=selfie.pk, event=event).exists():
            return
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
        if not face_id:
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
