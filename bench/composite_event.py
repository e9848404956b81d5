"""Compose a labelled event from single-person portraits, for `evaluate_matching`.

    python -m bench.composite_event ../shared/faces-lfw /tmp/event --split heldout --seed 1

The source has the layout of shared/faces-lfw (`people/<identity>/<n>.jpg` and a
manifest). The output has the layout `evaluate_matching` reads: one selfie per
attendee in `people/<identity>/`, group scenes in `groups/`, and a manifest whose
group entries list the attendees present. Strangers (identities without a
selfie) fill the scenes too, so a wrong match has somewhere to come from.

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
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from bench.harness import out

WIDTH, HEIGHT = 1600, 1067
# The central part of an aligned 250 px LFW portrait: the face and some hair,
# without the neighbours that news photos often show at the edges.
CROP = (45, 30, 205, 220)


def split_of(identity: str) -> str:
    return "heldout" if int(hashlib.sha1(identity.encode()).hexdigest(), 16) % 3 == 0 else "tuning"


def load_people(source: Path, split: str) -> dict[str, list[Path]]:
    entries = json.loads((source / "manifest.json").read_text())
    people: dict[str, list[Path]] = {}
    for entry in entries:
        identity = entry.get("identity")
        if entry.get("kind") == "person" and identity and (split == "all" or split_of(identity) == split):
            people.setdefault(identity, []).append(source / entry["file"])
    return {identity: sorted(files) for identity, files in sorted(people.items())}


def background(rng: random.Random) -> Image.Image:
    top = tuple(rng.randrange(40, 220) for _ in range(3))
    bottom = tuple(rng.randrange(20, 200) for _ in range(3))
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    image = Image.composite(Image.new("RGB", (WIDTH, HEIGHT), bottom), Image.new("RGB", (WIDTH, HEIGHT), top), gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(5, 15)):
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        w, h = rng.randrange(60, 500), rng.randrange(60, 400)
        draw.rectangle((x, y, x + w, y + h), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image.filter(ImageFilter.GaussianBlur(6))


def portrait(path: Path, height: int, rng: random.Random) -> Image.Image:
    image = Image.open(path).convert("RGB").crop(CROP)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    width = round(height * image.width / image.height)
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    if rng.random() < 0.2:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
    return image


def compose(
    source: Path,
    output: Path,
    *,
    split: str,
    attendees: int,
    strangers: int,
    photos: int,
    seed: int,
) -> dict[str, int]:
    rng = random.Random(seed)
    people = load_people(source, split)
    if len(people) < attendees + strangers:
        raise SystemExit(f"{split} has {len(people)} identities, fewer than {attendees + strangers}")
    chosen = rng.sample(sorted(people), attendees + strangers)
    attending, stranger_ids = chosen[:attendees], chosen[attendees:]
    if output.exists():
        shutil.rmtree(output)
    (output / "groups").mkdir(parents=True)
    manifest: list[dict[str, object]] = []
    pool: dict[str, list[Path]] = {}
    for identity in attending:
        files = list(people[identity])
        selfie = files.pop(rng.randrange(len(files)))
        target = output / "people" / identity / "1.jpg"
        target.parent.mkdir(parents=True)
        shutil.copyfile(selfie, target)
        manifest.append({"file": f"people/{identity}/1.jpg", "identity": identity, "kind": "person"})
        pool[identity] = files
    for identity in stranger_ids:
        pool[identity] = list(people[identity])

    # Every identity appears about equally often; attendees a little more.
    weights = {identity: (3 if identity in attending else 2) for identity in pool}
    faces = 0
    for number in range(photos):
        count = rng.choice((2, 3, 3, 4, 4, 5, 6))
        present: list[str] = []
        while len(present) < count:
            identity = rng.choices(list(weights), weights=list(weights.values()))[0]
            if identity not in present:
                present.append(identity)
        image = background(rng)
        slot = WIDTH // count
        placed: list[list[object]] = []
        for index, identity in enumerate(present):
            height = rng.randrange(130, 300)
            face = portrait(rng.choice(pool[identity]), min(height, int(slot * 1.15)), rng)
            x = index * slot + max(0, (slot - face.width) // 2) + rng.randrange(-10, 11)
            y = rng.randrange(40, HEIGHT - face.height - 40)
            x = max(0, min(x, WIDTH - face.width))
            image.paste(face, (x, y))
            placed.append([identity, x, y, face.width, face.height])
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
                "placed": placed,
            }
        )
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"attendees": attendees, "strangers": strangers, "photos": photos, "faces": faces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--split", choices=("tuning", "heldout", "all"), default="heldout")
    parser.add_argument("--attendees", type=int, default=30)
    parser.add_argument("--strangers", type=int, default=15)
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    summary = compose(
        args.source,
        args.output,
        split=args.split,
        attendees=args.attendees,
        strangers=args.strangers,
        photos=args.photos,
        seed=args.seed,
    )
    out(json.dumps(summary))


if __name__ == "__main__":
    main()
