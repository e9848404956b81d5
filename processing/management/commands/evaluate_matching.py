"""Measure my-photos precision and recall on a labelled folder, through the real pipeline."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from gallery.models import AttendeeProfile, Event, Face, Membership, Photo
from gallery.uploads import accept_uploads
from processing import services
from processing.backends.base import NoFaceError
from processing.backends.local import event_faces
from processing.evaluation import evaluate, load_dataset
from processing.pipeline import enrol_selfie, refresh_event_matches, refresh_member_matches
from processing.quality import event_quality_report
from processing.references import event_references
from processing.tasks import run_photo


class Command(BaseCommand):
    help = (
        "Build a throwaway event from DIR (layout of shared/faces), process it through the real "
        "pipeline, enrol one selfie per identity and score my-photos against manifest.json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--threshold", type=float, action="append", help="Match threshold(s) to score; repeatable.")
        parser.add_argument("--selfie-index", type=int, default=0, help="Which image of each identity is the selfie.")
        parser.add_argument(
            "--live",
            action="store_true",
            help="Enrol the selfies first and score what the pipeline stored as photos arrived "
            "(after the event-wide pass that runs while photos arrive), as during a live event.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument(
            "--dump",
            type=Path,
            help="Also write the event's faces, the selfies and the truth to this .npz file, for "
            "bench/tune_matching.py to replay the matching without detecting again.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        root: Path = options["directory"]
        if not (root / "manifest.json").is_file():
            raise CommandError(f"{root} has no manifest.json")
        dataset = load_dataset(root, options["selfie_index"])
        user_model = get_user_model()
        tag = uuid.uuid4().hex[:8]
        owner = user_model.objects.create_user(username=f"evaluate-{tag}", password=None)
        event = Event.objects.create(owner=owner, name=f"evaluate_matching {tag}")
        attendees: list[Any] = []
        live = options["live"]

        def enrol() -> tuple[dict[str, Any], float]:
            started = time.monotonic()
            users: dict[str, Any] = {}
            for identity, path in dataset.selfies.items():
                user = user_model.objects.create_user(username=f"evaluate-{tag}-{identity}"[:150], password=None)
                attendees.append(user)
                AttendeeProfile.objects.create(user=user, face_consent_at=timezone.now())
                Membership.objects.create(user=user, event=event)
                try:
                    enrol_selfie(user, SimpleUploadedFile(path.name, path.read_bytes()))
                except NoFaceError as error:
                    raise CommandError(
                        f"The selfie of {identity} ({path.name}) was refused: {error}. "
                        "Choose another image of each identity with --selfie-index."
                    ) from error
                users[identity] = user
            return users, time.monotonic() - started

        try:
            if live:
                users, selfie_s = enrol()
            started = time.monotonic()
            uploads = []
            for path in dataset.event_photos:
                upload = SimpleUploadedFile(str(path.relative_to(root)), path.read_bytes())
                upload.name = str(path.relative_to(root))
                uploads.append(upload)
            accepted, rejected = accept_uploads(event, owner, uploads, enqueue=False)
            for item in accepted:
                run_photo(item.photo.pk, "evaluate")
            if live:
                # The debounced event-wide pass that follows a burst of photos.
                refresh_event_matches(event)
            processing_s = time.monotonic() - started
            # Stored names are display names (base name only); map back by content.
            name_by_sha = {
                hashlib.sha256(p.read_bytes()).hexdigest(): str(p.relative_to(root)) for p in dataset.event_photos
            }
            names = {p.pk: name_by_sha.get(p.sha256, p.filename) for p in Photo.objects.filter(event=event)}
            if not live:
                users, selfie_s = enrol()

            results = []
            for threshold in options["threshold"] or [None]:
                overrides = {} if threshold is None else {"FACE_MATCH_THRESHOLD": threshold}
                with override_settings(**overrides):
                    found = {}
                    for identity, user in users.items():
                        if not (live and threshold is None):
                            refresh_member_matches(user, event)
                        found[identity] = {
                            names[pk] for pk in event.matches.filter(user=user).values_list("photo_id", flat=True)
                        }
                result = evaluate(dataset.truth, found, dataset.face_sizes)
                result["threshold"] = threshold if threshold is not None else settings.FACE_MATCH_THRESHOLD
                results.append(result)
            if options["dump"]:
                dump_event(options["dump"], event, users, names, dataset.truth)
            report = {
                "directory": str(root),
                "event_photos": len(dataset.event_photos),
                "identities": len(dataset.selfies),
                "mode": "live" if live else "batch",
                "strategy": settings.FACE_MATCH_STRATEGY,
                "rejected": [(r.filename, r.error) for r in rejected],
                "failed": list(event.photos.filter(status="failed").values_list("filename", "error")),
                "timing": {
                    "processing_s": round(processing_s, 2),
                    "photos_per_s": round(len(accepted) / processing_s, 3) if processing_s else None,
                    "selfies_s": round(selfie_s, 2),
                },
                "results": results,
                "quality": event_quality_report(event),
            }
        finally:
            # Matching schedules event-wide passes; this event will not need them.
            Schedule.objects.filter(name__startswith=f"refresh-event-{event.pk}-").delete()
            services.delete_event(event)
            for user in attendees:
                services.delete_account(user)
            owner.delete()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print(report)

    def _print(self, report: dict[str, Any]) -> None:
        timing = report["timing"]
        self.stdout.write(
            f"{report['event_photos']} event photos, {report['identities']} identities, "
            f"{report['strategy']} strategy, {report['mode']}; "
            f"processing {timing['processing_s']} s ({timing['photos_per_s']} photos/s), "
            f"selfies {timing['selfies_s']} s"
        )
        for name, error in report["rejected"] + report["failed"]:
            self.stdout.write(f"  not processed: {name}: {error}")
        quality = report["quality"]
        self.stdout.write(
            f"faces {quality['faces_found']}: matched {quality['faces_matched']}, "
            f"unclaimed {quality['faces_unclaimed']} in {quality['unclaimed_groups']} groups, "
            f"weak {quality['faces_weak']}, unusable {quality['faces_unusable']}; "
            f"matches on weak evidence {quality['weak_matches']} of {quality['matches']}"
        )
        for result in report["results"]:
            overall = result["overall"]
            small = result["small_faces"]
            small_text = (
                f"; small faces {small['found']}/{small['total']} = {small['recall']}" if small["total"] else ""
            )
            self.stdout.write(
                f"threshold {result['threshold']}: precision {overall['precision']:.3f} "
                f"recall {overall['recall']:.3f} F1 {overall['f1']:.3f} "
                f"(tp {overall['true_positives']}, fp {overall['false_positives']}, fn {overall['false_negatives']})"
                f"{small_text}"
            )
            for identity, scores in result["per_identity"].items():
                self.stdout.write(
                    f"    {identity:24} P {scores['precision']:.2f} R {scores['recall']:.2f} F1 {scores['f1']:.2f}"
                )
            for identity, name in result["misses"]:
                self.stdout.write(f"    miss: {identity} not found in {name}")
            for identity, name in result["false_matches"]:
                self.stdout.write(f"    false match: {identity} in {name}")


def dump_event(
    path: Path, event: Event, users: dict[str, Any], names: dict[int, str], truth: dict[str, set[str]]
) -> None:
    """Write what the matching read (faces, selfies) and the truth to `path` (numpy .npz, JSON for the rest).

    `boxes` holds each face's box (left, top, width, height as fractions of
    its photo), so a tool can tell whose face it is from a composite's placements.
    """
    faces = event_faces(event)
    box_of = {
        row[0]: row[1:] for row in Face.objects.filter(event=event).values_list("id", "left", "top", "width", "height")
    }
    selfies = {
        identity: reference.matrix()
        for identity, user in users.items()
        for reference in event_references(event, [user.pk])
    }
    meta = {
        "photo_names": {str(pk): name for pk, name in names.items()},
        "truth": {identity: sorted(photos) for identity, photos in truth.items()},
    }
    arrays: dict[str, np.ndarray] = {
        "face_ids": faces.face_ids,
        "photo_ids": faces.photo_ids,
        "vectors": faces.vectors,
        "qualities": faces.qualities,
        "boxes": np.array([box_of[int(pk)] for pk in faces.face_ids], np.float32).reshape(-1, 4),
        "meta": np.array(json.dumps(meta)),
    }
    arrays.update({f"selfie:{identity}": matrix for identity, matrix in selfies.items()})
    np.savez_compressed(path, allow_pickle=False, **arrays)
