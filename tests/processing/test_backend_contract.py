"""One behavioural suite for both face backends.

The local backend runs for real on real face photos. Rekognition runs the same
scenario against a real botocore client whose answers Stubber scripts from
what the photos show (the manifest's identities); the stub also checks every
parameter we send, and that every expected call (deletes included) was made.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.models import Event, Face, Match, Photo, PhotoStatus, Selfie
from processing import backends, limits, pipeline, services, tasks
from processing.backends import rekognition
from processing.backends.base import NoFaceError
from processing.models import FaceServiceUsage
from tests.processing.aws_stubs import RekognitionStub, box, face_id

pytestmark = pytest.mark.django_db

BIDEN_SELFIE = "people/joe_biden/1.jpg"
WITH_BIDEN = "groups/two_people.jpg"  # Obama and Biden
ALSO_WITH_BIDEN = "groups/obama_and_biden.jpg"
STRANGERS = "groups/strangers_group.jpg"
NO_FACE = "nonfaces/lake_view.jpg"
PEOPLE = {
    WITH_BIDEN: ["barack_obama", "joe_biden"],
    ALSO_WITH_BIDEN: ["joe_biden", "barack_obama", "child"],
    STRANGERS: ["stranger-1", "stranger-2", "stranger-3"],
}


class LocalDriver:
    """The embedded backend: nothing to script, everything computed for real."""

    name = "local"

    def __init__(self, settings: Any) -> None:
        settings.FACE_BACKEND = "local"
        self.settings = settings

    def photo(self, event: Event, photo: Photo, path: str, selfies: dict[int, str]) -> None:
        pass

    def selfie(self, user_id: int, identity: str, events: list[Event], faces: int = 1) -> None:
        pass

    def no_face_selfie(self) -> None:
        pass

    def forget_selfie(self, event: Event) -> None:
        pass

    def forget_photo(self, event: Event, photo: Photo) -> None:
        pass

    def forget_event(self, event: Event) -> None:
        pass

    def throttle_next_index(self) -> None:
        # The local "service" is throttled by its CPU guard: every slot is taken.
        self.settings.LOCAL_FACE_CONCURRENCY = 1
        self.settings.FACE_LIMIT_WAIT_SECONDS = 0.3
        taken, self.release = threading.Event(), threading.Event()

        def hold() -> None:
            with limits.get_limiter("local").slot():
                taken.set()
                self.release.wait(30)

        self.holder = threading.Thread(target=hold)
        self.holder.start()
        assert taken.wait(10)

    def end_throttling(self) -> None:
        self.release.set()
        self.holder.join()

    def done(self) -> None:
        pass


class RekognitionDriver:
    """Scripts Rekognition's answers from the identities in each photo."""

    name = "rekognition"

    def __init__(self, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.aws = RekognitionStub(settings, monkeypatch)
        monkeypatch.setattr(rekognition, "_client", self.aws.client)
        monkeypatch.setattr(rekognition, "_client_pid", os.getpid())
        settings.FACE_BACKEND = "rekognition"
        self.collections: set[int] = set()
        # FaceId → (event id, identity, photo id) of every face "stored" at AWS.
        self.faces: dict[str, tuple[int, str, int]] = {}
        self.selfie_faces: dict[tuple[int, int], str] = {}
        # FaceId → attendee whose Rekognition user the face is associated with.
        self.associated: dict[str, int] = {}
        self.identity: dict[int, str] = {}
        self.throttle = False

    def _collection(self, event: Event) -> None:
        if event.pk not in self.collections:
            self.aws.create_collection(event.pk)
            self.collections.add(event.pk)

    def _associate(self, event: Event, user_id: int, ids: list[str], threshold: float) -> None:
        self.aws.associate_faces(event.pk, user_id, ids, threshold)
        self.associated.update(dict.fromkeys(ids, user_id))

    def photo(self, event: Event, photo: Photo, path: str, selfies: dict[int, str]) -> None:
        self._collection(event)
        if self.throttle:
            self.aws.error("index_faces", "ThrottlingException", "Rate exceeded")
            self.throttle = False
        new = [(face_id(), person) for person in PEOPLE.get(path, [])]
        self.aws.index_faces(
            event.pk,
            str(photo.pk),
            [(fid, box(0.1 + 0.2 * i, 0.2, 0.15, 0.2)) for i, (fid, _) in enumerate(new)],
        )
        for fid, person in new:
            self.faces[fid] = (event.pk, person, photo.pk)
        if not selfies:
            return
        # SearchUsers per face: the attendees whose user (selfie and close matches) is this person.
        close: dict[int, list[str]] = {}
        for fid, person in new:
            users = [
                user_id
                for user_id, who in selfies.items()
                if who == person and (user_id, event.pk) in self.selfie_faces
            ]
            self.aws.search_users(event.pk, fid, [(user_id, 97.0) for user_id in users])
            for user_id in users:
                close.setdefault(user_id, []).append(fid)
        for user_id, ids in sorted(close.items()):
            self._associate(event, user_id, ids, rekognition.AUTO_ASSOCIATE_SIMILARITY)

    def selfie(self, user_id: int, identity: str, events: list[Event], faces: int = 1) -> None:
        self.aws.detect_faces([box(0.3, 0.2, 0.4, 0.5)] * faces)
        threshold = self.aws.settings.AWS_REKOGNITION_MATCH_THRESHOLD
        for event in events:
            self._collection(event)
            fid = face_id()
            self.aws.index_faces(event.pk, f"selfie-{user_id}", [(fid, box(0.3, 0.2, 0.4, 0.5))], max_faces=1)
            # The attendee's user does not exist yet: created on AWS's "not found".
            self.aws.associate_faces(event.pk, user_id, [fid], threshold, error="ResourceNotFoundException")
            self.aws.create_user(event.pk, user_id)
            self._associate(event, user_id, [fid], threshold)
            self.selfie_faces[(user_id, event.pk)] = fid
            stored = [(f, str(p)) for f, (e, who, p) in self.faces.items() if e == event.pk and who == identity]
            if any(e == event.pk for e, _, _ in self.faces.values()):
                self.aws.search_faces_by_image(event.pk, [(f, p, 98.0) for f, p in stored])
                if stored:
                    self._associate(event, user_id, [f for f, _ in stored], rekognition.AUTO_ASSOCIATE_SIMILARITY)

    def no_face_selfie(self) -> None:
        self.aws.detect_faces([])

    def forget_selfie(self, event: Event) -> None:
        """The attendee's last selfie: their user goes (its faces disassociated), then the selfie face."""
        for (user_id, event_id), fid in list(self.selfie_faces.items()):
            if event_id == event.pk:
                self.aws.delete_user(event.pk, user_id)
                self.associated = {f: u for f, u in self.associated.items() if u != user_id}
                self.aws.delete_faces(event.pk, [fid])
                del self.selfie_faces[(user_id, event_id)]

    def forget_photo(self, event: Event, photo: Photo) -> None:
        """The faces a reprocessing replaces are deleted at AWS."""
        old = [fid for fid, (_, _, p) in self.faces.items() if p == photo.pk]
        self._pending_delete = (event, old)

    def after_reprocess(self) -> None:
        event, old = self._pending_delete
        held = {fid: f"user-{self.associated[fid]}" for fid in old if fid in self.associated}
        self.aws.delete_faces(event.pk, old, associated=held)
        for user, ids in sorted({u: [f for f in held if held[f] == u] for u in held.values()}.items()):
            self.aws.disassociate_faces(event.pk, user, ids)
        if held:
            self.aws.delete_faces(event.pk, sorted(held))
        for fid in old:
            del self.faces[fid]
            self.associated.pop(fid, None)

    def forget_event(self, event: Event) -> None:
        self.aws.delete_collection(event.pk)

    def throttle_next_index(self) -> None:
        self.throttle = True

    def end_throttling(self) -> None:
        pass

    def done(self) -> None:
        self.aws.done()


@pytest.fixture(params=["local", "rekognition"])
def driver(
    request: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, faces_dir: Path
) -> Iterator[Any]:
    settings.REDIS_URL = ""
    settings.FACE_LIMIT_LOCK_DIR = tmp_path / "locks"
    settings.AWS_RETRY_BASE_DELAY = 0.0
    settings.PHOTO_RETRY_BASE_DELAY = 0.0
    backends.get_backend.cache_clear()
    chosen = LocalDriver(settings) if request.param == "local" else RekognitionDriver(settings, monkeypatch)
    yield chosen
    backends.get_backend.cache_clear()


def add_photo(event: Event, faces_dir: Path, path: str) -> Photo:
    data = (faces_dir / path).read_bytes()
    photo = Photo(event=event, filename=Path(path).name, sha256=hashlib.sha256(data).hexdigest(), format="JPEG")
    photo.original.save(Path(path).name, ContentFile(data), save=False)
    photo.save()
    return photo


def process(photo: Photo) -> None:
    for _ in range(3):
        outcome = tasks.run_photo(photo.pk)
        if outcome != "retrying":
            break
        Photo.objects.filter(pk=photo.pk).update(next_attempt_at=None)
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.DONE, photo.error


def my_photos(user: Any, event: Event) -> set[int]:
    return set(Match.objects.filter(user=user, event=event).values_list("photo_id", flat=True))


def selfie_upload(faces_dir: Path, path: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(Path(path).name, (faces_dir / path).read_bytes(), content_type="image/jpeg")


def test_index_search_both_ways_and_delete(
    driver: Any, event: Event, member: Any, faces_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # A photo arrives before anyone has a selfie: indexed, nothing searched.
    first = add_photo(event, faces_dir, WITH_BIDEN)
    driver.photo(event, first, WITH_BIDEN, selfies={})
    process(first)
    assert first.face_count >= 2
    for face in Face.objects.filter(photo=first):
        assert 0 <= face.left < 1 and 0 <= face.top < 1 and 0 < face.width <= 1 and 0 < face.height <= 1
        assert (driver.name == "rekognition") == bool(face.external_id)

    # The selfie finds the earlier photo ...
    driver.selfie(member.pk, "joe_biden", [event])
    selfie, found = pipeline.enrol_selfie(member, selfie_upload(faces_dir, BIDEN_SELFIE))
    assert found == 1
    assert my_photos(member, event) == {first.pk}

    # ... and later photos find the selfie; strangers match nobody.
    second = add_photo(event, faces_dir, ALSO_WITH_BIDEN)
    driver.photo(event, second, ALSO_WITH_BIDEN, selfies={member.pk: "joe_biden"})
    process(second)
    strangers = add_photo(event, faces_dir, STRANGERS)
    driver.photo(event, strangers, STRANGERS, selfies={member.pk: "joe_biden"})
    process(strangers)
    assert strangers.face_count >= 2
    assert my_photos(member, event) == {first.pk, second.pk}

    # Deleting the selfie deletes its face data; later photos match nobody.
    driver.forget_selfie(event)
    pipeline.delete_selfie(selfie)
    assert not Selfie.objects.filter(user=member).exists()
    driver.forget_photo(event, second)
    Photo.objects.filter(pk=second.pk).update(status=PhotoStatus.QUEUED)
    driver.photo(event, second, ALSO_WITH_BIDEN, selfies={})
    if driver.name == "rekognition":
        driver.after_reprocess()
    process(second)
    assert my_photos(member, event) == {first.pk}

    # Deleting the event deletes everything stored for it (the backend's part after the commit).
    driver.forget_event(event)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_event(event)
    assert not Face.objects.exists()
    driver.done()


def test_selfie_without_a_face_is_refused(driver: Any, member: Any, faces_dir: Path, client_for: Any) -> None:
    driver.no_face_selfie()
    with pytest.raises(NoFaceError):
        pipeline.enrol_selfie(member, selfie_upload(faces_dir, NO_FACE))
    driver.no_face_selfie()
    response = client_for(member).post(
        "/api/me/selfie", {"selfie": selfie_upload(faces_dir, NO_FACE)}, format="multipart"
    )
    assert response.status_code == 400 and response.json()["detail"] == "No face found in the selfie"
    assert not Selfie.objects.exists()
    driver.done()


def test_throttling_then_success(driver: Any, event: Event, faces_dir: Path) -> None:
    photo = add_photo(event, faces_dir, WITH_BIDEN)
    driver.throttle_next_index()
    driver.photo(event, photo, WITH_BIDEN, selfies={})
    first = tasks.run_photo(photo.pk)
    driver.end_throttling()
    if first == "retrying":
        Photo.objects.filter(pk=photo.pk).update(next_attempt_at=None)
        assert tasks.run_photo(photo.pk) == "done"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.DONE and photo.face_count >= 2
    usage = FaceServiceUsage.objects.filter(backend=driver.name)
    assert sum(usage.values_list("throttles", flat=True)) >= 1
    driver.done()
