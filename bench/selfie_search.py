"""Selfie search: `LocalBackend.match_reference` at 1k, 10k and 50k faces in one event.

Builds a throwaway database (SQLite by default, or a throwaway PostgreSQL
database with --database postgres), bulk-inserts Face rows with synthetic
embeddings (random float32 128-d unit vectors; a few planted near copies of the
selfie so that the match path has work), then times a search p50/p95. The
baseline is the same distance computation in pure numpy over a matrix already
in memory. It also times the parts of a search (fetching the BinaryField rows,
decoding them, matching) to show where the time goes, and a mat-vec distance
over a cached matrix, the floor of a search whose face matrix is kept in memory.
The process's first search, which reads every descriptor and computes what
the process keeps for the next ones, is timed on its own, and so is a search
after each arrival of one photo's faces (one of them the guest's), which
brings what the process keeps up to date with the new faces.

    .venv/bin/python bench/selfie_search.py [--sizes 1000,10000,50000] [--repeat 30] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.harness import Stack, django_setup, make_user, ms, out, percentile, ratio

BAR_P95_SECONDS = 0.050
FACES_PER_PHOTO = 10


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def timings(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Call `fn` once to warm up, then `repeat` times; returns the durations and the last result."""
    result = fn()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        durations.append(time.perf_counter() - started)
    return durations, result


def fill(event: Any, owner: Any, target: int, selfie: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add faces (and their photos) to `event` until it holds `target`; returns the new vectors."""
    from gallery.models import Face, Photo, PhotoStatus

    have = Face.objects.filter(event=event).count()
    missing = target - have
    if missing <= 0:
        return np.zeros((0, 128), dtype=np.float32)
    vectors = unit_vectors(rng, missing)
    planted = rng.choice(missing, size=max(1, missing // 500), replace=False)
    near = selfie + rng.normal(0, 0.02, (len(planted), 128)).astype(np.float32)
    vectors[planted] = near / np.linalg.norm(near, axis=1, keepdims=True)
    photo_count = -(-missing // FACES_PER_PHOTO)
    first = Photo.objects.count()
    photos = Photo.objects.bulk_create(
        [
            Photo(
                event=event,
                uploaded_by=owner,
                original=f"events/{event.pk}/originals/{first + i}.jpg",
                filename=f"{first + i}.jpg",
                sha256=f"{first + i:064x}",
                format="JPEG",
                status=PhotoStatus.DONE,
            )
            for i in range(photo_count)
        ],
        batch_size=2000,
    )
    Face.objects.bulk_create(
        [
            Face(
                photo_id=photos[i // FACES_PER_PHOTO].pk,
                event=event,
                left=0.1,
                top=0.1,
                width=0.1,
                height=0.1,
                embedding=vectors[i].tobytes(),
            )
            for i in range(missing)
        ],
        batch_size=2000,
    )
    return vectors


def measure(
    backend: Any, event: Any, reference: Any, matrix: np.ndarray, selfie_vector: np.ndarray, repeat: int
) -> dict[str, tuple[list[float], int]]:
    """Time the search, the baseline and the parts of a search."""
    from django.conf import settings

    from gallery.models import EMBEDDING_DTYPE, Face

    threshold = float(settings.FACE_MATCH_THRESHOLD)
    few = max(5, repeat // 3)

    def faces() -> Any:
        return Face.objects.filter(event=event, embedding__isnull=False)

    # The first search in a process reads the event's descriptors and computes
    # what it keeps (the neighbourhoods, processing.matching.Neighbourhoods).
    from processing.backends.local import forget_cached_faces

    forget_cached_faces()
    started = time.perf_counter()
    backend.match_reference(event, reference)
    first = [time.perf_counter() - started]
    search, found = timings(lambda: backend.match_reference(event, reference), repeat)

    def bare() -> np.ndarray:
        distances = np.linalg.norm(matrix - selfie_vector, axis=1)
        return np.flatnonzero(distances < threshold)

    baseline, hits = timings(bare, repeat)
    rows_t, rows = timings(lambda: list(faces().order_by("id").values_list("id", "photo_id", "embedding")), few)
    decode_t, loaded = timings(
        lambda: np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=EMBEDDING_DTYPE).reshape(-1, 128), few
    )
    models_t, _ = timings(lambda: list(faces().only("id", "photo_id", "embedding")), few)
    dist_t, _ = timings(lambda: np.linalg.norm(loaded - selfie_vector, axis=1), few)
    norms = np.einsum("ij,ij->i", matrix, matrix)
    dot_t, dot_hits = timings(
        lambda: np.flatnonzero(norms - 2 * (matrix @ selfie_vector) + selfie_vector @ selfie_vector < threshold**2),
        repeat,
    )
    return {
        "search": (search, len(found)),
        "first": (first, len(found)),
        "baseline": (baseline, len(hits)),
        "rows": (rows_t, len(rows)),
        "decode": (decode_t, len(loaded)),
        "models": (models_t, 0),
        "distances": (dist_t, 0),
        "dot": (dot_t, len(dot_hits)),
    }


def after_arrivals(
    backend: Any, event: Any, owner: Any, reference: Any, selfie: np.ndarray, rng: np.random.Generator, rounds: int
) -> tuple[list[float], np.ndarray]:
    """Time a search after each of `rounds` photos of FACES_PER_PHOTO faces arrives; returns the new vectors too."""
    from gallery.models import Face

    durations, added = [], []
    for _ in range(rounds):
        have = Face.objects.filter(event=event).count()
        added.append(fill(event, owner, have + FACES_PER_PHOTO, selfie, rng))
        started = time.perf_counter()
        backend.match_reference(event, reference)
        durations.append(time.perf_counter() - started)
    return durations, np.concatenate(added)


def report(figures: dict[str, tuple[list[float], int]]) -> None:
    """Print one size's figures."""
    search, found = figures["search"]
    baseline, hits = figures["baseline"]
    dot, _ = figures["dot"]
    p50 = {name: percentile(values, 50) for name, (values, _) in figures.items()}
    rest = p50["search"] - p50["rows"] - p50["decode"]
    out(f"  match_reference: p50 {ms(p50['search'])} p95 {ms(percentile(search, 95))} ({found} matches)")
    out(f"  the process's first search (reads the descriptors, computes what it keeps): {ms(p50['first'])}")
    if "arrival" in figures:
        arrival = p50["arrival"]
        out(
            f"  a search after a photo of {FACES_PER_PHOTO} faces arrives: p50 {ms(arrival)}; "
            f"ratio to the first search {ratio(arrival, p50['first'])}, to a search with nothing new "
            f"{ratio(arrival, p50['search'])}"
        )
    out(f"  baseline numpy in memory: p50 {ms(p50['baseline'])} p95 {ms(percentile(baseline, 95))} ({hits} matches)")
    out(f"  ratio p95 match_reference/baseline: {ratio(percentile(search, 95), percentile(baseline, 95))}")
    out(
        f"  where a search's time goes (p50): fetching the rows (values_list) {ms(p50['rows'])}, "
        f"np.frombuffer {ms(p50['decode'])}, matching and the rest {ms(max(rest, 0.0))}"
    )
    out(
        f"  for reference: the same rows as model instances (.only) {ms(p50['models'])}; distances by "
        f"np.linalg.norm {ms(p50['distances'])}, by one mat-vec with cached norms p95 {ms(percentile(dot, 95))}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,50000", help="face counts (default 1000,10000,50000)")
    parser.add_argument("--repeat", type=int, default=30, help="timed searches per size (default 30)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    with Stack(database=args.database, keep=args.keep) as stack:
        stack.prepare()
        django_setup(stack)
        from gallery.models import Event, Selfie
        from processing.backends.base import Reference
        from processing.backends.local import LocalBackend

        rng = np.random.default_rng(args.seed)
        owner, _ = make_user("owner", photographer=True)
        attendee, _ = make_user("attendee")
        event = Event.objects.create(owner=owner, name="selfie search bench")
        selfie_vector = unit_vectors(rng, 1)[0]
        reference = Reference(user_id=attendee.pk, selfies=[Selfie(user=attendee, embedding=selfie_vector.tobytes())])
        backend = LocalBackend()
        matrix = np.zeros((0, 128), dtype=np.float32)
        out(f"database: {args.database}; {args.repeat} timed searches per size after one warm-up")
        for size in sizes:
            started = time.perf_counter()
            matrix = np.concatenate([matrix, fill(event, owner, size, selfie_vector, rng)])
            out(f"\n{size} faces (inserted in {time.perf_counter() - started:.1f} s)")

            figures = measure(backend, event, reference, matrix, selfie_vector, args.repeat)
            arrivals, added = after_arrivals(
                backend, event, owner, reference, selfie_vector, rng, max(5, args.repeat // 3)
            )
            figures["arrival"] = (arrivals, 0)
            matrix = np.concatenate([matrix, added])
            report(figures)
            if size >= 50_000:
                met = percentile(figures["search"][0], 95) < BAR_P95_SECONDS
                out(f"  bar p95 < {ms(BAR_P95_SECONDS)} at {size}: {'MET' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
