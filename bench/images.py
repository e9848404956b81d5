"""Test images for the benchmarks and drills, generated once and cached under CACHE_DIR."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from bench.harness import CACHE_DIR, FACES_DIR
from testsupport.markers import MARKERS


def camera_jpeg(seed: int, size: tuple[int, int] = (6000, 4000), quality: int = 85, noise: float = 4.2) -> bytes:
    """A camera-like JPEG: a smooth random scene with shapes, blur and sensor noise.

    At 6000x4000, quality 85 and the default noise it weighs about 3 MB, like
    a 24-megapixel camera JPEG (a flat colour would weigh a tenth of that).
    """
    width, height = size
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 200), max(2, width // 200), 3), dtype=np.uint8)
    base = Image.fromarray(small).resize((width // 4, height // 4), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(60):
        x, y = int(rng.integers(0, width // 4)), int(rng.integers(0, height // 4))
        r = int(rng.integers(10, 200))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            draw.rectangle([x - r, y - r // 2, x + r, y + r // 2], fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(2)).resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(base, dtype=np.int16)
    grain = rng.normal(0, noise, (height, width, 1)).astype(np.int16)
    array = np.clip(array + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _write_camera(args: tuple[Path, int, tuple[int, int]]) -> None:
    path, seed, size = args
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(camera_jpeg(seed, size))
        tmp.rename(path)


def camera_corpus(count: int = 100, size: tuple[int, int] = (6000, 4000), processes: int = 2) -> list[Path]:
    """`count` distinct camera-like JPEGs, generated on first use and cached."""
    folder = CACHE_DIR / f"camera-{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"cam-{i:04d}.jpg" for i in range(count)]
    todo = [(p, i, size) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(_write_camera, todo)
    return paths


def face_sources() -> list[Path]:
    """The real group photos (several faces each) and portraits of ../shared/faces; [] if absent."""
    manifest = FACES_DIR / "manifest.json"
    if not manifest.exists():
        return []
    entries = json.loads(manifest.read_text())
    groups = [FACES_DIR / e["file"] for e in entries if e.get("kind") == "group"]
    people = [FACES_DIR / e["file"] for e in entries if e.get("kind") == "person" and e.get("mode") == "RGB"]
    return [p for p in groups + people if p.exists()]


def vary(source: Image.Image, seed: int) -> bytes:
    """A distinct JPEG of the same scene: small crop, mirror, brightness; faces stay faces."""
    rng = np.random.default_rng(seed)
    image = source.convert("RGB")
    w, h = image.size
    dx, dy = int(w * rng.uniform(0, 0.04)), int(h * rng.uniform(0, 0.04))
    image = image.crop((dx, dy, w - int(w * rng.uniform(0, 0.04)), h - int(h * rng.uniform(0, 0.04))))
    if seed % 2:
        image = ImageOps.mirror(image)
    factor = float(rng.uniform(0.9, 1.1))
    image = image.point(lambda v: min(255, int(v * factor)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def face_photos(count: int) -> list[tuple[str, bytes]]:
    """`count` distinct photos with real faces (varied copies of shared/faces), or
    camera-like synthetic photos when the face photos are absent. (name, bytes) pairs."""
    sources = face_sources()
    if not sources:
        return [(f"synthetic-{i}.jpg", camera_jpeg(i, (1600, 1067))) for i in range(count)]
    opened = [Image.open(p) for p in sources]
    return [(f"{sources[i % len(sources)].stem}-{i}.jpg", vary(opened[i % len(opened)], i)) for i in range(count)]


def marker_png(index: int, people: list[int], size: tuple[int, int] = (320, 240), face: int = 40) -> bytes:
    """A unique PNG for the fake backend: one marker square per person, and `index`
    written as a row of pixels so that every photo has different bytes."""
    image = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for slot, person in enumerate(people):
        left = 10 + slot * (face + 10)
        draw.rectangle([left, 30, left + face - 1, 30 + face - 1], fill=MARKERS[person])
    for bit in range(32):
        value = 255 if index >> bit & 1 else 0
        image.putpixel((bit, size[1] - 1), (value, value, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
