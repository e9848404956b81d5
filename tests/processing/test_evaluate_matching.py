"""The evaluate_matching command on the real faces in shared/faces."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from gallery.models import Event, Face, Match, Photo

pytestmark = pytest.mark.django_db


def test_scores_shared_faces_and_cleans_up(faces_dir, event, settings, tmp_path):
    settings.FACE_SELFIE_JITTERS = 1
    out = io.StringIO()
    call_command("evaluate_matching", str(faces_dir), "--threshold", "0.55", "--threshold", "0.6", "--json", stdout=out)
    report = json.loads(out.getvalue())

    assert report["identities"] == 11 and report["event_photos"] == 48
    assert report["mode"] == "batch" and report["strategy"] == "event"
    assert report["failed"] == [] and report["rejected"] == []
    assert [r["threshold"] for r in report["results"]] == [0.55, 0.6]
    default = report["results"][1]
    assert default["overall"]["precision"] >= 0.98 and default["overall"]["recall"] >= 0.95
    assert set(default["per_identity"]) == set(report_identities(faces_dir))
    assert all(len(item) == 2 for item in default["misses"] + default["false_matches"])
    assert report["timing"]["photos_per_s"] > 0
    # Only the pre-existing event is left, untouched.
    assert list(Event.objects.all()) == [event]
    assert not Photo.objects.exists() and not Face.objects.exists() and not Match.objects.exists()

    # Selfies first, photos arriving one by one: the pipeline stores the same answer.
    out = io.StringIO()
    dump = tmp_path / "event.npz"
    call_command("evaluate_matching", str(faces_dir), "--live", "--json", "--dump", str(dump), stdout=out)
    live = json.loads(out.getvalue())
    # The dump holds what the matching read, for bench/tune_matching.py to replay.
    data = np.load(dump)
    faces = len(data["face_ids"])
    assert faces == live["quality"]["faces_found"] and data["vectors"].shape == (faces, 128)
    assert len(data["photo_ids"]) == len(data["qualities"]) == faces
    # Boxes as fractions of their photo, so that a composite's placements tell whose face each is.
    assert data["boxes"].shape == (faces, 4) and data["boxes"].min() >= 0 and data["boxes"].max() <= 1
    selfies = {key.removeprefix("selfie:") for key in data.files if key.startswith("selfie:")}
    assert selfies == report_identities(faces_dir)
    meta = json.loads(str(data["meta"]))
    assert len(meta["photo_names"]) == 48 and set(meta["truth"]) == selfies
    assert live["mode"] == "live"
    assert live["results"][0]["misses"] == default["misses"]
    assert live["results"][0]["false_matches"] == default["false_matches"]


def report_identities(faces_dir):
    return {path.name for path in (faces_dir / "people").iterdir() if path.is_dir()}


def test_refuses_a_folder_without_manifest(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"manifest\.json"):
        call_command("evaluate_matching", str(tmp_path))


def test_a_selfie_without_a_face_stops_with_the_identity_named(tmp_path):
    from django.core.management.base import CommandError
    from PIL import Image

    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "people" / "nobody").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (400, 400), (120, 130, 140)).save(tmp_path / "people" / "nobody" / name)
    entries = [{"kind": "person", "identity": "nobody", "file": f"people/nobody/{n}"} for n in ("a.jpg", "b.jpg")]
    (tmp_path / "manifest.json").write_text(json.dumps(entries))

    with pytest.raises(CommandError, match=r"selfie of nobody \(a\.jpg\)"):
        call_command("evaluate_matching", str(tmp_path), "--live")
