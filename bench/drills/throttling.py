"""Drill: 50 % injected throttling on the stubbed Rekognition backend.

PASS: every photo ends done, and the concurrency of face-service calls
observed across all worker processes never exceeds AWS_CONCURRENT_REQUESTS
(and reaches it, so the limit is what bounds it). SKIP (exit 0) when the
Rekognition backend or the concurrency limiter is not in the tree or does not
import.

A real qcluster with more workers than slots runs the real RekognitionBackend
(limiter, metrics, retries) whose AWS client is replaced by the throttling
stand-in of bench/drills/throttled_backend.py; each call logs its interval.

    .venv/bin/python bench/drills/throttling.py [--photos 60] [--workers 6] [--limit 3] [--rate 0.5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.harness import PYTHON, Stack, django_setup, make_user, out, settled, verdict
from bench.images import marker_png
from testsupport.paths import REPO
from testsupport.waiting import wait_for

BACKEND = "bench.drills.throttled_backend.ThrottledRekognitionBackend"


def ready() -> str:
    """'' if the backend and the limiter import and work; otherwise why not."""
    for module in ("processing/limits.py", "processing/backends/rekognition.py"):
        if not (REPO / module).exists():
            return f"{module} is not in the tree yet"
    check = subprocess.run(
        [PYTHON, "-c", "import django; django.setup(); import processing.limits, " + BACKEND.rsplit(".", 1)[0]],
        cwd=REPO,
        env={
            "DJANGO_SETTINGS_MODULE": "photoevent.settings",
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": "/tmp/photoevent-bench-check",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        return f"the Rekognition backend or the limiter does not import: {check.stderr.strip().splitlines()[-1:]}"
    return ""


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (ends sort before starts at a tie)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


def run(photos: int = 60, workers: int = 6, limit: int = 3, rate: float = 0.5, keep: bool = False) -> bool | None:
    """Run the drill; True/False for PASS/FAIL, None for SKIP."""
    reason = ready()
    if reason:
        out(f"SKIP throttling: {reason}")
        return None
    with Stack(keep=keep) as stack:
        calls = stack.dir / "calls"
        env = {
            "FACE_BACKEND": BACKEND,
            "PHOTO_QUEUE_WORKERS": str(workers),
            "PHOTO_QUEUE_BATCH_SIZE": "2",
            "PHOTO_RETRY_BASE_DELAY": "0.5",
            "AWS_CONCURRENT_REQUESTS": str(limit),
            "AWS_RETRY_BASE_DELAY": "0.05",
            "AWS_REKOGNITION_STARTUP_CHECK": "false",
            "BENCH_THROTTLE_RATE": str(rate),
            "BENCH_CALL_LATENCY": "0.1",
            "BENCH_CALL_LOG_DIR": str(calls),
        }
        stack.env.update({k: v for k, v in env.items() if k.startswith(("AWS_", "FACE_"))})
        stack.prepare()
        django_setup(stack)
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.db.models import Sum

        from gallery.models import Event, Photo, PhotoStatus
        from gallery.uploads import accept_uploads
        from processing.models import FaceServiceUsage

        owner, _ = make_user("drill-photographer", photographer=True)
        event = Event.objects.create(owner=owner, name="throttling drill")
        stack.start_cluster(**env)
        uploads = [SimpleUploadedFile(f"t{i}.png", marker_png(i, [i % 5]), "image/png") for i in range(photos)]
        started = time.monotonic()
        accept_uploads(event, owner, uploads)  # type: ignore[arg-type]
        wait_for(lambda: settled(event.pk), 600, "the queue to drain", interval=0.5)
        wall = time.monotonic() - started
        done = Photo.objects.filter(event=event, status=PhotoStatus.DONE).count()
        failed = list(
            Photo.objects.filter(event=event).exclude(status=PhotoStatus.DONE).values_list("error", flat=True)
        )
        intervals, throttled, total = [], 0, 0
        for path in calls.glob("calls-*.log"):
            for line in path.read_text().splitlines():
                start, end, _, outcome = line.split()
                intervals.append((float(start), float(end)))
                total += 1
                throttled += outcome == "throttled"
        processes = len(list(calls.glob("calls-*.log")))
        peak = max_overlap(intervals)
        usage = FaceServiceUsage.objects.aggregate(calls=Sum("calls"), throttles=Sum("throttles"))
        retried = Photo.objects.filter(event=event, attempts__gt=1).count()
        ok = done == photos and peak <= limit and total > 0
        out(
            f"{verdict(ok)} throttling: {photos} photos, {workers} workers in {processes} processes, "
            f"limit {limit}; calls {total}, throttled {throttled} ({throttled / max(total, 1):.0%}); "
            f"observed max concurrency {peak} (limit {limit}); done {done}/{photos} in {wall:.1f} s, "
            f"{retried} photos needed a queue retry; metrics recorded {usage['calls']} calls, "
            f"{usage['throttles']} throttles"
        )
        if peak < limit:
            out("  note: the limit was never reached, so it was not what bounded the concurrency")
        for error in failed[:5]:
            out(f"  not done: {error[:200]}")
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--workers", type=int, default=6, help="queue workers (more than --limit)")
    parser.add_argument("--limit", type=int, default=3, help="AWS_CONCURRENT_REQUESTS")
    parser.add_argument("--rate", type=float, default=0.5, help="share of calls throttled")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    result = run(args.photos, args.workers, args.limit, args.rate, args.keep)
    return 1 if result is False else 0


if __name__ == "__main__":
    sys.exit(main())
