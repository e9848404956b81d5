"""The live selfie check: real portraits for the face paths, synthetic images for the rest."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageOps

from processing import liveness
from processing.liveness import Pose, Refusal, head_pose, issue_challenge, verify_frames
from testsupport.paths import FACES_DIR

USER = 7

# Found by running `head_pose` over every portrait of the two sets; the
# comments give (yaw, pitch) and the largest descriptor distance of the group.
# paul_mccartney: front 6 (0.04), his left 7 (0.30), his right 5 (-0.25); 0.40.
PAUL_FRONT, PAUL_LEFT, PAUL_RIGHT = "paul_mccartney/6.jpg", "paul_mccartney/7.jpg", "paul_mccartney/5.jpg"
# richard_gephardt: front 4 (-0.03, 0.83), his right 7 (-0.31), up 8 (pitch 0.65); 0.38.
GEPHARDT_FRONT, GEPHARDT_RIGHT, GEPHARDT_UP = (
    "richard_gephardt/4.jpg",
    "richard_gephardt/7.jpg",
    "richard_gephardt/8.jpg",
)


@pytest.fixture
def lfw_dir() -> Path:
    path = FACES_DIR.parent / "faces-lfw"
    if not (path / "manifest.json").exists():
        pytest.skip(f"LFW portraits not found at {path} (next to PHOTOEVENT_FACES_DIR)")
    return path


def portrait(root: Path, name: str) -> bytes:
    """The bytes of people/<name>, after checking the manifest says it shows that person."""
    file = f"people/{name}"
    entries = {entry["file"]: entry for entry in json.loads((root / "manifest.json").read_text())}
    assert entries[file]["identity"] == name.split("/")[0]
    return (root / file).read_bytes()


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def check(frames: list[bytes], poses: list[str], user_id: int = USER) -> liveness.LivenessResult:
    challenge = issue_challenge(user_id, poses=poses)
    return verify_frames(user_id, challenge.nonce, frames)


# --- challenges ---------------------------------------------------------------


def test_a_challenge_is_front_then_two_or_three_distinct_poses(settings):
    settings.LIVENESS_CHALLENGE_TTL = 45
    lengths = set()
    for _ in range(40):
        challenge = issue_challenge(USER)
        poses = challenge.poses
        assert poses[0] == Pose.FRONT
        assert set(poses[1:]) <= {Pose.LEFT, Pose.RIGHT, Pose.UP}
        assert len(set(poses[1:])) == len(poses) - 1
        lengths.add(len(poses) - 1)
        remaining = (challenge.expires_at - liveness.timezone.now()).total_seconds()
        assert 43 <= remaining <= 45
    assert lengths == {2, 3}
    body = issue_challenge(USER).as_json()
    assert set(body) == {"nonce", "poses", "instructions", "expires_at"}
    assert body["instructions"][0] == "Look straight at the camera"


def test_a_tampered_or_foreign_nonce_is_refused():
    challenge = issue_challenge(USER, poses=["left", "right"])
    forged = signing.dumps({"n": "x", "u": USER, "p": ["front"], "e": 2**40}, salt="another")
    for user_id, nonce in ((USER + 1, challenge.nonce), (USER, challenge.nonce[:-2] + "xx"), (USER, forged)):
        result = verify_frames(user_id, nonce, [b"", b"", b""])
        assert (result.verified, result.code) == (False, Refusal.CHALLENGE_INVALID)
    # None of this spent the genuine nonce: its owner still gets to the frames.
    assert verify_frames(USER, challenge.nonce, []).code == Refusal.FRAME_COUNT


def test_an_expired_nonce_is_refused(settings):
    challenge = issue_challenge(USER, poses=["left", "up"])
    late = challenge.expires_at + timedelta(seconds=1)
    result = verify_frames(USER, challenge.nonce, [b"", b"", b""], now=late)
    assert (result.verified, result.code) == (False, Refusal.CHALLENGE_EXPIRED)
    assert "too long" in result.message
    early = challenge.expires_at - timedelta(seconds=1)
    assert verify_frames(USER, challenge.nonce, [b""], now=early).code == Refusal.FRAME_COUNT


def test_frames_are_bounded_and_must_be_images(monkeypatch):
    monkeypatch.setattr(liveness, "FRAME_MAX_BYTES", 1000)
    small = jpeg(Image.new("RGB", (20, 20), "grey"))
    large = SimpleUploadedFile("frame.jpg", b"x" * 1001, content_type="image/jpeg")
    result = check([small, large, small], ["left", "right"])
    assert (result.code, result.frame) == (Refusal.FRAME_TOO_LARGE, 2)
    result = check([small, small, b"GIF89a not really"], ["left", "right"])
    assert (result.code, result.frame) == (Refusal.FRAME_UNREADABLE, 3)
    assert check([small, small], ["left", "right"]).code == Refusal.FRAME_COUNT


def test_a_frame_without_a_face_is_refused():
    blank = [jpeg(Image.new("RGB", (320, 240), colour)) for colour in ("grey", "navy", "olive")]
    result = check(blank, ["left", "right"])
    assert (result.code, result.frame) == (Refusal.NO_FACE, 1)
    assert "picture 1" in result.message


# --- pose geometry ----------------------------------------------------------------


def test_head_pose_follows_the_nose():
    # Eye corners at x 60-80 (image left eye) and 120-140, eye line at y 100.
    eyes = [(140, 100), (120, 100), (60, 100), (80, 100)]
    front = head_pose(np.array([*eyes, (100, 150)], float))
    turned = head_pose(np.array([*eyes, (120, 150)], float))
    tipped = head_pose(np.array([*eyes, (100, 125)], float))
    assert front.yaw == pytest.approx(0) and front.pitch == pytest.approx(50 / 60)
    assert turned.yaw == pytest.approx(20 / 60)
    assert tipped.pitch == pytest.approx(25 / 60)
    # A rolled head (the whole face rotated in the image) keeps its pose.
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = head_pose(np.array([*eyes, (120, 150)], float) @ rotation.T)
    assert (rolled.yaw, rolled.pitch) == pytest.approx((turned.yaw, turned.pitch))


# --- real portraits ---------------------------------------------------------------


def test_one_person_turning_left_then_right_is_verified(lfw_dir):
    frames = [portrait(lfw_dir, name) for name in (PAUL_FRONT, PAUL_LEFT, PAUL_RIGHT)]
    result = check(frames, ["left", "right"])
    assert (result.verified, result.code, result.frame) == (True, "verified", None)


def test_one_person_turning_right_then_up_is_verified(lfw_dir):
    frames = [portrait(lfw_dir, name) for name in (GEPHARDT_FRONT, GEPHARDT_RIGHT, GEPHARDT_UP)]
    result = check(frames, ["right", "up"])
    assert (result.verified, result.code) == (True, "verified")


def test_a_turn_the_wrong_way_is_refused(lfw_dir):
    frames = [portrait(lfw_dir, name) for name in (PAUL_FRONT, PAUL_RIGHT, PAUL_LEFT)]
    result = check(frames, ["left", "right"])
    assert (result.verified, result.code, result.frame) == (False, Refusal.WRONG_POSE, 2)
    assert "to your left" in result.message


def test_a_reused_nonce_is_refused(lfw_dir):
    frames = [portrait(lfw_dir, name) for name in (PAUL_FRONT, PAUL_LEFT, PAUL_RIGHT)]
    challenge = issue_challenge(USER, poses=["left", "right"])
    assert verify_frames(USER, challenge.nonce, frames).verified
    again = verify_frames(USER, challenge.nonce, frames)
    assert (again.verified, again.code) == (False, Refusal.CHALLENGE_USED)


def test_a_refused_attempt_spends_the_nonce_too(faces_dir):
    still = portrait(faces_dir, "barack_obama/1.jpg")
    challenge = issue_challenge(USER, poses=["left", "up"])
    assert verify_frames(USER, challenge.nonce, [still, still, still]).code == Refusal.DUPLICATE_FRAMES
    assert verify_frames(USER, challenge.nonce, [still, still, still]).code == Refusal.CHALLENGE_USED


def test_the_same_still_sent_for_every_pose_is_refused(faces_dir):
    still = portrait(faces_dir, "joe_biden/1.jpg")
    result = check([still, still, still], ["right", "left"])
    assert (result.verified, result.code, result.frame) == (False, Refusal.DUPLICATE_FRAMES, 2)
    assert "same image" in result.message


def test_a_still_reencoded_scaled_and_rotated_is_still_refused(faces_dir):
    image = Image.open(io.BytesIO(portrait(faces_dir, "joe_biden/1.jpg"))).convert("RGB")
    width, height = image.size
    copies = [
        jpeg(image),
        jpeg(image.resize((width // 2, height // 2)), quality=60),
        jpeg(image.rotate(4, resample=Image.Resampling.BICUBIC).crop((20, 10, width - 5, height - 30)), quality=70),
    ]
    assert len(set(copies)) == 3
    result = check(copies, ["left", "up"])
    assert (result.verified, result.code) == (False, Refusal.DUPLICATE_FRAMES)


def test_a_still_and_its_mirror_image_are_refused(faces_dir):
    # Flipped, a portrait turns the other way: without this check the pair
    # would fail only on the size of the turn, and a portrait turned a little
    # more would pass for front and right.
    image = Image.open(io.BytesIO(portrait(faces_dir, "barack_obama/1.jpg"))).convert("RGB")
    frames = [jpeg(image), jpeg(ImageOps.mirror(image)), portrait(faces_dir, "joe_biden/1.jpg")]
    result = check(frames, ["right", "up"])
    assert (result.code, result.frame) == (Refusal.DUPLICATE_FRAMES, 2)
    assert "flipped" in result.message


def test_frames_of_two_people_are_refused(faces_dir):
    frames = [portrait(faces_dir, name) for name in ("barack_obama/1.jpg", "joe_biden/1.jpg", "barack_obama/3.jpg")]
    result = check(frames, ["left", "right"])
    assert (result.verified, result.code, result.frame) == (False, Refusal.DIFFERENT_PEOPLE, 2)
    assert "same person" in result.message


def test_frames_of_two_people_turning_as_asked_are_refused(lfw_dir):
    # Each frame passes the pose check on its own: only the identity gives it away.
    frames = [portrait(lfw_dir, name) for name in (PAUL_FRONT, PAUL_LEFT, GEPHARDT_RIGHT)]
    result = check(frames, ["left", "right"])
    assert (result.code, result.frame) == (Refusal.DIFFERENT_PEOPLE, 3)


def test_a_front_frame_turned_away_is_refused(lfw_dir):
    frames = [portrait(lfw_dir, name) for name in (PAUL_LEFT, PAUL_FRONT, PAUL_RIGHT)]
    result = check(frames, ["right", "left"])
    assert (result.code, result.frame) == (Refusal.NOT_FACING, 1)


# --- enrolment -------------------------------------------------------------------


def test_a_passed_check_makes_the_front_frame_a_live_verified_selfie(lfw_dir, attendee):
    from gallery.models import Selfie
    from processing.liveness import verify_live_selfie
    from processing.pipeline import enrol_selfie

    still = SimpleUploadedFile("still.jpg", portrait(lfw_dir, PAUL_LEFT), content_type="image/jpeg")
    old, _ = enrol_selfie(attendee, still)
    frames = [
        SimpleUploadedFile(f"frame-{n}.jpg", portrait(lfw_dir, name), content_type="image/jpeg")
        for n, name in enumerate((PAUL_FRONT, PAUL_LEFT, GEPHARDT_RIGHT), 1)
    ]
    refused = verify_live_selfie(attendee, issue_challenge(attendee.pk, poses=["left", "right"]).nonce, frames)
    assert refused.code == Refusal.DIFFERENT_PEOPLE
    assert list(Selfie.objects.filter(user=attendee).values_list("pk", "live_verified_at")) == [(old.pk, None)]

    frames[2] = SimpleUploadedFile("frame-3.jpg", portrait(lfw_dir, PAUL_RIGHT), content_type="image/jpeg")
    result = verify_live_selfie(attendee, issue_challenge(attendee.pk, poses=["left", "right"]).nonce, frames)
    assert result.verified
    selfie = Selfie.objects.get(user=attendee)
    assert selfie.pk != old.pk and selfie.live_verified_at is not None
    with selfie.image.open("rb") as stored:
        kept = np.asarray(Image.open(stored).convert("L").resize((64, 64)), dtype=float)

    def difference(name: str) -> float:
        frame = Image.open(io.BytesIO(portrait(lfw_dir, name))).convert("L").resize((64, 64))
        return float(np.abs(np.asarray(frame, dtype=float) - kept).mean())

    # The stored selfie is the front frame (re-encoded), not another one.
    assert difference(PAUL_FRONT) < 5 < min(difference(PAUL_LEFT), difference(PAUL_RIGHT))


def test_a_same_person_distance_as_loose_as_matching_is_a_system_error(settings):
    from processing.checks import check_liveness

    assert check_liveness(None) == []
    settings.LIVENESS_SAME_PERSON_DISTANCE = settings.FACE_MATCH_THRESHOLD
    assert [message.id for message in check_liveness(None)] == ["processing.E020"]
