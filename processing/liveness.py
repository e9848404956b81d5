"""Live selfie: a random head-pose challenge, checked on the frames a camera sends back.

Protocol
--------
1. ``issue_challenge(user_id)`` draws two or three distinct poses from
   (left, right, up) in random order and returns them after a leading
   ``front``: the guest first looks straight at the camera, then follows each
   instruction. The first frame is the reference every turn is measured
   against (people hold their head and their phone differently, so an absolute
   yaw or pitch says little) and becomes the enrolled selfie on success.
2. The challenge is stateless: ``nonce`` is a token signed with the secret key
   (django.core.signing) that carries a random id, the user id, the poses and
   the expiry. Nothing is stored when it is issued; a client cannot change the
   poses or lengthen the expiry without breaking the signature.
3. ``verify_frames(user_id, nonce, frames)`` takes one frame per pose, in the
   order of ``poses``. Frames are the camera's own (not mirrored) images:
   "left" is the guest's left, so the nose moves towards the image's right.
   The nonce is spent on the first attempt that gets past its signature and
   expiry, whatever the outcome, with ``cache.add`` of a "used" key: an atomic
   insert-if-absent in both configured caches (Redis SET NX, a diskcache
   SQLite transaction), so two processes cannot both spend it. A new attempt
   needs a new challenge, and so new random poses.

Checks, in order (the first failure is the answer):
the nonce (signature, user, expiry, single use); the number, size and format
of the frames; byte-identical frames; exactly one face in each frame; aligned
face crops that are nearly the same (a still photo sent several times,
re-encoded, scaled or rotated, or the front one flipped); one person throughout (descriptor distance at
most LIVENESS_SAME_PERSON_DISTANCE); the front frame facing the camera and
each later frame turned as asked relative to it.

Head pose comes from dlib's public-domain 5-point landmarks (two corners of
each eye and the base of the nose), already computed for the descriptor. In
the frame of the eye line, with the distance between the eye centres as unit,
the nose's offset along the line grows with yaw and its drop below the line
shrinks as the head tips back. The thresholds below were calibrated on the
1,585 portraits of shared/faces and shared/faces-lfw: 90% of those news
photos lie within +-0.18 of yaw and between 0.61 and 0.94 of drop; a yaw of
0.2 is a clear turn of 20 to 25 degrees, and a drop 0.12 lower than the same
person's front frame a clear tilt upwards.

The dlib models are those of the local backend, whatever FACE_BACKEND says:
they ship with the application and give landmarks and descriptors in one pass;
with Rekognition they load in the web process for this check only.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from gallery.models import Selfie
from processing.backends.base import NoFaceError
from processing.backends.local import models as dlib_models
from processing.images import InvalidImage, inspect_image, open_upright
from processing.metrics import face_call
from processing.pipeline import enrol_selfie

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SIGNING_SALT = "photoevent.liveness.challenge"
USED_KEY_PREFIX = "liveness:used:"

# Frames are decoded at most this large: a face filling a phone frame is still
# 200 px wide, plenty for landmarks, at a fraction of the decoding cost.
FRAME_MAX_SIDE = 640
FRAME_MAX_BYTES = 4 * 1024 * 1024
# The challenge's own poses, after the leading front frame.
MIN_POSES, MAX_POSES = 2, 3
MAX_LIVE_FRAMES = 1 + MAX_POSES

# Pose thresholds (see the module docstring for their calibration).
FRONT_MAX_YAW = 0.12  # the reference frame must face the camera
TURN_MIN_YAW = 0.20  # left/right: change of yaw from the front frame
TILT_MIN_PITCH = 0.12  # up: fall of the nose's drop from the front frame
# Mean absolute difference of two normalised 24x24 aligned face crops with a
# quarter of margin (0 for the same crop, about 1.1 for unrelated ones). Of 173
# copies of 51 portraits (halved, enlarged by half, or rotated by 5 degrees and
# cropped, each re-encoded at quality 60), 99.4% stayed under 0.2; two photos
# of one person never came closer than 0.27. The limit sits near the copies,
# because a live turn of the head can change the crop less than a new photo
# does, and refusing a live guest is the worse mistake here: a still that gets
# past this line still has to pass the pose check.
NEAR_IDENTICAL_DIFFERENCE = 0.2
CHIP_SIZE, CHIP_PADDING = 24, 0.25


class Pose(models.TextChoices):
    """A head pose of the challenge; the label is the instruction shown to the guest."""

    FRONT = "front", gettext_lazy("Look straight at the camera")
    LEFT = "left", gettext_lazy("Turn your head to your left")
    RIGHT = "right", gettext_lazy("Turn your head to your right")
    UP = "up", gettext_lazy("Tilt your head up")


CHALLENGE_POSES = (Pose.LEFT, Pose.RIGHT, Pose.UP)


class Refusal(models.TextChoices):
    """Why a live check failed: the machine code of the API's answer."""

    CHALLENGE_INVALID = "challenge_invalid"
    CHALLENGE_EXPIRED = "challenge_expired"
    CHALLENGE_USED = "challenge_used"
    FRAME_COUNT = "frame_count"
    FRAME_TOO_LARGE = "frame_too_large"
    FRAME_UNREADABLE = "frame_unreadable"
    DUPLICATE_FRAMES = "duplicate_frames"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    DIFFERENT_PEOPLE = "different_people"
    NOT_FACING = "not_facing"
    WRONG_POSE = "wrong_pose"


@dataclass(frozen=True)
class Challenge:
    """What the camera page must do: one frame per pose, in order, before `expires_at`."""

    nonce: str
    poses: tuple[str, ...]
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The API's shape: ``{"nonce", "poses", "instructions", "expires_at"}``."""
        return {
            "nonce": self.nonce,
            "poses": list(self.poses),
            "instructions": [str(Pose(pose).label) for pose in self.poses],
            "expires_at": self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class LivenessResult:
    """The outcome of a live check.

    `code` is "verified" or a `Refusal`; `message` is translated for the guest;
    `frame` is the 1-based number of the frame at fault, when one is.
    """

    verified: bool
    code: str
    message: str
    frame: int | None = None


@dataclass(frozen=True)
class HeadPose:
    """Nose offset along the eye line (yaw) and below it (pitch), in inter-eye distances.

    Yaw is positive when the nose is towards the image's right, i.e. the person
    turned to their own left in an unmirrored camera frame.
    """

    yaw: float
    pitch: float


def issue_challenge(user_id: int, *, poses: Sequence[str] | None = None, now: datetime | None = None) -> Challenge:
    """Draw a new challenge for `user_id`; `poses` and `now` fix it for tests."""
    if poses is None:
        rng = secrets.SystemRandom()
        poses = rng.sample(CHALLENGE_POSES, rng.randint(MIN_POSES, MAX_POSES))
    sequence = (Pose.FRONT.value, *(str(Pose(pose).value) for pose in poses))
    expires_at = (now or timezone.now()) + timedelta(seconds=settings.LIVENESS_CHALLENGE_TTL)
    expires_at = expires_at.replace(microsecond=0)
    payload = {"n": secrets.token_urlsafe(16), "u": user_id, "p": sequence, "e": int(expires_at.timestamp())}
    return Challenge(
        nonce=signing.dumps(payload, salt=SIGNING_SALT, compress=True), poses=sequence, expires_at=expires_at
    )


def verify_frames(
    user_id: int, nonce: str, frames: Sequence[bytes | File[Any]], *, now: datetime | None = None
) -> LivenessResult:
    """Check a challenge's frames (see the module docstring); spends the nonce.

    Runs the face models: call it outside any database transaction.
    """
    try:
        poses = _spend(user_id, nonce, now or timezone.now())
        images = _decode(frames, len(poses))
        faces = [_face(image, number) for number, image in enumerate(images, 1)]
        _check_not_repeated(faces)
        _check_same_person(faces)
        _check_poses(faces, poses)
    except _Refused as refused:
        return LivenessResult(False, refused.code, refused.message, refused.frame)
    return LivenessResult(True, "verified", gettext("Your selfie is verified."))


def verify_live_selfie(user: User, nonce: str, frames: Sequence[bytes | File[Any]]) -> LivenessResult:
    """Check a challenge's frames and, when they pass, make the front frame the user's selfie.

    The new selfie is marked live-verified and replaces the previous ones, so
    the reference that finds the guest's photos is the face that was live, not
    an earlier still. The frames are not stored: only the front one, as the
    selfie. Runs the face models and the backend: call it outside any
    database transaction. Raises `BackendError` when the face service fails.
    """
    result = verify_frames(user.pk, nonce, frames)
    if not result.verified:
        return result
    front = frames[0]
    upload = SimpleUploadedFile("live-selfie.jpg", front if isinstance(front, bytes) else _read(front))
    try:
        selfie, _ = enrol_selfie(user, upload, replace_all=True)
    except (NoFaceError, InvalidImage):
        return LivenessResult(False, Refusal.NO_FACE.value, _no_face_message(1), 1)
    Selfie.objects.filter(pk=selfie.pk).update(live_verified_at=timezone.now())
    return result


class _Refused(Exception):
    def __init__(self, code: Refusal, message: str, frame: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.frame = code.value, message, frame


def _spend(user_id: int, nonce: str, now: datetime) -> tuple[str, ...]:
    """The challenge's poses, once the nonce is proved genuine, current and unspent."""
    invalid = _Refused(Refusal.CHALLENGE_INVALID, gettext("This check is not valid. Start again."))
    try:
        payload = signing.loads(nonce, salt=SIGNING_SALT)
        nonce_id, owner, poses, expires = str(payload["n"]), payload["u"], tuple(payload["p"]), int(payload["e"])
    except (signing.BadSignature, TypeError, KeyError, ValueError):
        raise invalid from None
    if owner != user_id:
        raise invalid
    remaining = expires - now.timestamp()
    if remaining <= 0:
        raise _Refused(Refusal.CHALLENGE_EXPIRED, gettext("The check took too long. Start again."))
    if not cache.add(USED_KEY_PREFIX + nonce_id, True, timeout=int(remaining) + 5):
        raise _Refused(Refusal.CHALLENGE_USED, gettext("This check was already used. Start again."))
    return poses


@dataclass(frozen=True)
class _FrameImage:
    digest: str
    array: np.ndarray


def _decode(frames: Sequence[bytes | File[Any]], expected: int) -> list[_FrameImage]:
    if len(frames) != expected:
        raise _Refused(
            Refusal.FRAME_COUNT,
            gettext("Expected %(expected)d pictures, received %(received)d. Start again.")
            % {"expected": expected, "received": len(frames)},
        )
    images = []
    for number, frame in enumerate(frames, 1):
        size = len(frame) if isinstance(frame, bytes) else frame.size
        if size is None or size > FRAME_MAX_BYTES:
            raise _Refused(
                Refusal.FRAME_TOO_LARGE,
                gettext("Picture %(number)d is larger than %(limit)d MB.")
                % {"number": number, "limit": FRAME_MAX_BYTES // (1024 * 1024)},
                number,
            )
        data = frame if isinstance(frame, bytes) else _read(frame)
        try:
            inspect_image(io.BytesIO(data))
            image = open_upright(io.BytesIO(data), FRAME_MAX_SIDE, max_full_decode_pixels=settings.SELFIE_MAX_PIXELS)
        except InvalidImage:
            raise _Refused(
                Refusal.FRAME_UNREADABLE,
                gettext("Picture %(number)d is not a readable JPEG, PNG or WebP image.") % {"number": number},
                number,
            ) from None
        images.append(_FrameImage(hashlib.sha256(data).hexdigest(), np.asarray(image)))
    return images


def _read(frame: File[Any]) -> bytes:
    frame.seek(0)
    data = frame.read(FRAME_MAX_BYTES + 1)
    frame.seek(0)
    return bytes(data)


@dataclass(frozen=True)
class _Face:
    number: int
    digest: str
    pose: HeadPose
    chip: np.ndarray  # normalised grey aligned crop
    descriptor: np.ndarray


def _face(image: _FrameImage, number: int) -> _Face:
    """The one face of a frame, with its pose, aligned crop and descriptor."""
    m = dlib_models()
    with face_call("local", "LivenessFrame", None, images=1) as call:
        # A face filling a camera frame is found without upsampling; a second,
        # upsampled look catches a face further from the camera.
        rects = list(m.detector(image.array, 0)) or list(m.detector(image.array, 1))
        rects = [r for r in rects if min(r.width(), r.height()) >= settings.FACE_MIN_SIZE]
        if len(rects) == 1:
            shape = m.shape_predictor(image.array, rects[0])
            descriptor = np.asarray(m.encoder.compute_face_descriptor(image.array, shape, 1), dtype=np.float32)
            chip = np.asarray(
                m.dlib.get_face_chip(image.array, shape, size=CHIP_SIZE, padding=CHIP_PADDING), dtype=np.float32
            )
        call.faces_indexed = len(rects)
    if not rects:
        raise _Refused(Refusal.NO_FACE, _no_face_message(number), number)
    if len(rects) > 1:
        raise _Refused(
            Refusal.SEVERAL_FACES,
            gettext("Picture %(number)d shows several faces. Only yours should be in the frame.") % {"number": number},
            number,
        )
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    grey = chip.mean(axis=2)
    grey = (grey - grey.mean()) / (grey.std() + 1e-6)
    return _Face(number, image.digest, head_pose(points), grey, descriptor)


def _no_face_message(number: int) -> str:
    return gettext("No face found in picture %(number)d. Face the light and keep your whole face in the frame.") % {
        "number": number
    }


def head_pose(points: np.ndarray) -> HeadPose:
    """Yaw and pitch proxies from dlib's 5 landmarks, as a (5, 2) array of x, y.

    Points 0-1 are the corners of the eye on the image's right, 2-3 those of
    the eye on its left, 4 the base of the nose.
    """
    right_eye, left_eye = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    eye_line = right_eye - left_eye
    distance = float(np.hypot(*eye_line))
    if distance == 0:
        return HeadPose(0.0, 0.0)
    along = eye_line / distance
    across = np.array([-along[1], along[0]])  # points down the face in image coordinates
    nose = points[4] - (left_eye + right_eye) / 2
    return HeadPose(yaw=float(nose @ along) / distance, pitch=float(nose @ across) / distance)


def _check_not_repeated(faces: Sequence[_Face]) -> None:
    for first, second in itertools.combinations(faces, 2):
        if first.digest == second.digest or _near_identical(first.chip, second.chip):
            raise _Refused(
                Refusal.DUPLICATE_FRAMES,
                gettext("Pictures %(first)d and %(second)d are the same image. Take each picture live, as instructed.")
                % {"first": first.number, "second": second.number},
                second.number,
            )
    # A still flipped left to right turns the other way: a slightly turned
    # portrait and its mirror image would pass for front and one turn. Only the
    # front frame is compared so: a live turn to the left is much like the
    # mirror image of one to the right.
    front = faces[0]
    for face in faces[1:]:
        if _near_identical(front.chip, face.chip[:, ::-1]):
            raise _Refused(
                Refusal.DUPLICATE_FRAMES,
                gettext("Picture %(number)d is picture 1 flipped. Take each picture live, as instructed.")
                % {"number": face.number},
                face.number,
            )


def _near_identical(first: np.ndarray, second: np.ndarray) -> bool:
    return float(np.abs(first - second).mean()) < NEAR_IDENTICAL_DIFFERENCE


def _check_same_person(faces: Sequence[_Face]) -> None:
    limit = settings.LIVENESS_SAME_PERSON_DISTANCE
    for first, second in itertools.combinations(faces, 2):
        if float(np.linalg.norm(first.descriptor - second.descriptor)) > limit:
            raise _Refused(
                Refusal.DIFFERENT_PEOPLE,
                gettext("Pictures %(first)d and %(second)d do not show the same person.")
                % {"first": first.number, "second": second.number},
                second.number,
            )


def _check_poses(faces: Sequence[_Face], poses: Sequence[str]) -> None:
    front = faces[0].pose
    if abs(front.yaw) > FRONT_MAX_YAW:
        raise _Refused(Refusal.NOT_FACING, gettext("In picture 1, look straight at the camera."), 1)
    for face, pose in zip(faces[1:], poses[1:], strict=True):
        turn, tilt = face.pose.yaw - front.yaw, front.pitch - face.pose.pitch
        done = {Pose.LEFT: turn >= TURN_MIN_YAW, Pose.RIGHT: turn <= -TURN_MIN_YAW, Pose.UP: tilt >= TILT_MIN_PITCH}
        if not done[Pose(pose)]:
            raise _Refused(Refusal.WRONG_POSE, _wrong_pose_message(Pose(pose), face.number), face.number)


def _wrong_pose_message(pose: Pose, number: int) -> str:
    messages = {
        Pose.LEFT: gettext("In picture %(number)d, turn your head further to your left."),
        Pose.RIGHT: gettext("In picture %(number)d, turn your head further to your right."),
        Pose.UP: gettext("In picture %(number)d, tilt your head further up."),
    }
    return messages[pose] % {"number": number}
