"""Compose a labelled event from single-person portraits, for `evaluate_matching`.

    python -m bench.composite_event /tmp/event --split heldout --seed 1
    python -m bench.composite_event /tmp/crowd --mode crowd --split tuning
    python -m bench.composite_event ../shared/faces-lfw /tmp/lfw-only --portraits centre

The sources have the layout of shared/faces and shared/faces-lfw
(`people/<identity>/<n>.jpg` and a manifest); by default both are used, so a
scene mixes aligned LFW crops with camera portraits of other sizes, and an
identity present in both gets the portraits of both. The output has the layout
`evaluate_matching` reads: one selfie per attendee in `people/<identity>/`,
group scenes in `groups/`, and a manifest whose group entries list the
attendees present. Strangers (identities without a selfie) fill the scenes too,
three per attendee by default, as at a wedding where most guests never enrol.

Scenes are camera-sized (3000x2000 by default) and are analysed at
PHOTO_ANALYSIS_MAX_SIDE like any upload. Faces are placed at a known size at
analysis size: 50-220 px in the default mode (2-6 people, a guest appears at
many sizes over an evening), 30-70 px in the crowd mode (10-20 people in rows).
A portrait is pasted whole (head, shoulders, its own background) or as the
central crop of the face.

Identities are split by a hash of their name into a tuning part and a held-out
part (one third), so tuning never sees the identities of the final check. No
portrait used as a selfie appears in a scene; the other portraits of an
identity are reused across scenes at different sizes, flipped and relit, the
way one person appears across an evening.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from bench.harness import out

DEFAULT_SOURCES = (Path("../shared/faces-lfw"), Path("../shared/faces"))
ANALYSIS_SIDE = 1600
# Where the face is in an aligned 250 px LFW portrait, and the central part
# of it: the face and some hair, without the neighbours at the edges.
LFW_FACE = (68, 68, 182, 182)
CROP = (45, 30, 205, 220)
# A whole portrait is cut to this many face widths across and face heights
# down around the face: head, shoulders and background.
FULL_WIDTH, FULL_HEIGHT = 2.4, 2.8
CENTRE_WIDTH, CENTRE_HEIGHT = 1.45, 1.7
# Face width at analysis size, by mode, and people per photo.
FACE_SIZES = {"default": (50, 220), "crowd": (30, 70)}
PEOPLE = {"default": (2, 3, 3, 4, 4, 5, 6), "crowd": tuple(range(10, 21))}


@dataclass(frozen=True)
class Portrait:
    path: Path
    face: tuple[int, int, int, int]  # left, top, right, bottom in the image's pixels


def split_of(identity: str) -> str:
    return "heldout" if int(hashlib.sha1(identity.encode()).hexdigest(), 16) % 3 == 0 else "tuning"


def _face_box(path: Path, detector: object) -> tuple[int, int, int, int] | None:
    """The largest face of a camera portrait, found on a copy at most 800 px wide."""
    import numpy as np

    image = Image.open(path).convert("RGB")
    scale = min(1.0, 800 / max(image.size))
    small = image.resize((round(image.width * scale), round(image.height * scale))) if scale < 1 else image
    rects = detector(np.asarray(small), 1)  # type: ignore[operator]
    if not rects:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    return tuple(round(v / scale) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))  # type: ignore[return-value]


def load_people(sources: list[Path], split: str) -> dict[str, list[Portrait]]:
    """Every portrait of the split's identities, across the sources, with its face box."""
    detector = None
    people: dict[str, list[Portrait]] = {}
    for source in sources:
        manifest = source / "manifest.json"
        if not manifest.is_file():
            continue
        for entry in json.loads(manifest.read_text()):
            identity = entry.get("identity")
            if entry.get("kind") != "person" or not identity or (split != "all" and split_of(identity) != split):
                continue
            path = source / entry["file"]
            with Image.open(path) as image:
                size = image.size
            if size == (250, 250):
                face: tuple[int, int, int, int] | None = LFW_FACE
            else:
                if detector is None:
                    import dlib  # heavy; only camera portraits need it

                    detector = dlib.get_frontal_face_detector()
                face = _face_box(path, detector)
            if face is not None:
                people.setdefault(identity, []).append(Portrait(path, face))
    return {identity: sorted(files, key=lambda p: str(p.path)) for identity, files in sorted(people.items())}


def background(rng: random.Random, width: int, height: int) -> Image.Image:
    top = tuple(rng.randrange(40, 220) for _ in range(3))
    bottom = tuple(rng.randrange(20, 200) for _ in range(3))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(5, 15)):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 25, width // 3), rng.randrange(height // 20, height // 3)
        draw.rectangle((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image.filter(ImageFilter.GaussianBlur(width / 250))


def portrait(source: Portrait, face_width: int, rng: random.Random, full: bool) -> tuple[Image.Image, int]:
    """The portrait cut around its face and scaled so the face is `face_width` px; and where the face top is."""
    image = Image.open(source.path).convert("RGB")
    left, top, right, bottom = source.face
    fw, fh = right - left, bottom - top
    across, down = (FULL_WIDTH, FULL_HEIGHT) if full else (CENTRE_WIDTH, CENTRE_HEIGHT)
    cx = (left + right) / 2
    box = (
        round(cx - fw * across / 2),
        round(top - fh * (down - 1) * (0.45 if full else 0.6)),
        round(cx + fw * across / 2),
        round(top - fh * (down - 1) * (0.45 if full else 0.6) + fh * down),
    )
    # Outside the source image the crop is the image's edge colour, not black.
    pad = max(0, -box[0], -box[1], box[2] - image.width, box[3] - image.height)
    if pad:
        image = ImageOps.expand(image, pad, fill=image.getpixel((0, 0)))  # type: ignore[arg-type]
        box = (box[0] + pad, box[1] + pad, box[2] + pad, box[3] + pad)
    image = image.crop(box)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    scale = face_width / fw
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    if rng.random() < 0.2:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2) * max(1.0, face_width / 120)))
    face_top = round(fh * (down - 1) * (0.45 if full else 0.6) * scale)
    return image, face_top


def compose(
    sources: list[Path],
    output: Path,
    *,
    split: str,
    attendees: int,
    strangers_per_attendee: float = 3.0,
    photos: int,
    seed: int,
    mode: str = "default",
    size: tuple[int, int] = (3000, 2000),
    portraits: str = "mixed",
) -> dict[str, object]:
    rng = random.Random(seed)
    width, height = size
    people = load_people(sources, split)
    # Attendees need a selfie and a portrait for the scenes; strangers one portrait.
    eligible = [i for i in sorted(people) if len(people[i]) >= 2]
    strangers = round(attendees * strangers_per_attendee)
    if len(eligible) < attendees or len(people) < attendees + strangers:
        raise SystemExit(
            f"{split} has {len(people)} identities ({len(eligible)} with two portraits), "
            f"fewer than {attendees} attendees and {strangers} strangers"
        )
    attending = rng.sample(eligible, attendees)
    stranger_ids = rng.sample(sorted(set(people) - set(attending)), strangers)
    if output.exists():
        shutil.rmtree(output)
    (output / "groups").mkdir(parents=True)
    manifest: list[dict[str, object]] = []
    pool: dict[str, list[Portrait]] = {}
    for identity in attending:
        files = list(people[identity])
        selfie = files.pop(rng.randrange(len(files)))
        target = output / "people" / identity / f"1{selfie.path.suffix}"
        target.parent.mkdir(parents=True)
        shutil.copyfile(selfie.path, target)
        manifest.append({"file": f"people/{identity}/{target.name}", "identity": identity, "kind": "person"})
        pool[identity] = files
    for identity in stranger_ids:
        pool[identity] = list(people[identity])

    # Every identity appears about equally often; attendees a little more.
    weights = {identity: (3 if identity in attending else 2) for identity in pool}
    to_photo = max(width, height) / ANALYSIS_SIDE
    low, high = FACE_SIZES[mode]
    faces = 0
    for number in range(photos):
        count = rng.choice(PEOPLE[mode])
        present: list[str] = []
        while len(present) < count:
            identity = rng.choices(list(weights), weights=list(weights.values()))[0]
            if identity not in present:
                present.append(identity)
        image = background(rng, width, height)
        rows = 1 if mode == "default" else (2 if count <= 13 else 3)
        per_row = -(-count // rows)
        placed: list[list[object]] = []
        y = rng.randrange(height // 20, height // 6) if rows > 1 else 0
        for row in range(rows):
            members = present[row * per_row : (row + 1) * per_row]
            slot = width // max(1, len(members))
            # Back rows are further away: smaller faces.
            row_low = low + (high - low) * row / rows
            row_high = low + (high - low) * (row + 1) / rows if rows > 1 else high
            row_bottom = y
            for index, identity in enumerate(members):
                full = portraits == "full" or (portraits == "mixed" and rng.random() < 0.6)
                across = FULL_WIDTH if full else CENTRE_WIDTH
                face_at_analysis = rng.uniform(row_low, row_high)
                face_px = min(face_at_analysis * to_photo, slot / across * 1.3)
                face, face_top = portrait(rng.choice(pool[identity]), round(face_px), rng, full)
                x = index * slot + (slot - face.width) // 2 + rng.randrange(-slot // 12, slot // 12 + 1)
                x = max(0, min(x, width - face.width))
                if rows == 1:
                    top = rng.randrange(height // 25, max(height // 25 + 1, height - face.height - height // 25))
                else:
                    top = max(0, y - face_top + rng.randrange(-height // 60, height // 60 + 1))
                top = min(top, height - face_top - round(face_px * 1.3))
                image.paste(face, (x, top))
                row_bottom = max(row_bottom, top + face_top + round(face_px * 1.25))
                placed.append([identity, x, top, face.width, face.height, round(face_px / to_photo)])
            y = row_bottom + height // 60
        name = f"groups/scene_{number:03d}.jpg"
        image.save(output / name, quality=90)
        faces += count
        manifest.append(
            {
                "file": name,
                "identity": None,
                "kind": "group",
                "faces": count,
                "identities": sorted(i for i in present if i in attending),
                "strangers": sorted(i for i in present if i not in attending),
                # identity, left, top, width, height of the pasted portrait; face width at analysis size
                "placed": placed,
            }
        )
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {
        "mode": mode,
        "attendees": attendees,
        "strangers": strangers,
        "photos": photos,
        "faces": faces,
        "size": f"{width}x{height}",
    }


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="source folders (default: ../shared/faces-lfw and ../shared/faces), then the output folder",
    )
    parser.add_argument("--split", choices=("tuning", "heldout", "all"), default="heldout")
    parser.add_argument("--mode", choices=tuple(PEOPLE), default="default", help="default: 2-6 people; crowd: 10-20")
    parser.add_argument("--attendees", type=int, default=None, help="default 18, crowd 15")
    parser.add_argument("--strangers-per-attendee", type=float, default=3.0)
    parser.add_argument("--photos", type=int, default=None, help="default 120, crowd 60")
    parser.add_argument("--size", type=_size, default=(3000, 2000), help="scene size, WIDTHxHEIGHT (default 3000x2000)")
    parser.add_argument("--portraits", choices=("mixed", "full", "centre"), default="mixed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    crowd = args.mode == "crowd"
    summary = compose(
        args.paths[:-1] or [p for p in DEFAULT_SOURCES if p.exists()],
        args.paths[-1],
        split=args.split,
        attendees=args.attendees or (15 if crowd else 18),
        strangers_per_attendee=args.strangers_per_attendee,
        photos=args.photos or (60 if crowd else 120),
        seed=args.seed,
        mode=args.mode,
        size=args.size,
        portraits=args.portraits,
    )
    out(json.dumps(summary))


if __name__ == "__main__":
    main()
