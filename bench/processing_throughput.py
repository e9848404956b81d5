"""Processing throughput: the queue with N workers against the bare backend loop.

The photos are distinct variants of the real group photos and portraits of
../shared/faces (synthetic camera-like JPEGs if absent), at their own sizes.

- queue: a real ``manage.py qcluster`` with PHOTO_QUEUE_WORKERS=N and the local
  (dlib) backend, at the bare loop's priority (QCLUSTER_NICE=0). The photos are
  stored first, then enqueued at once; the time runs from the enqueue to the
  last photo's finished_at. Workers are warmed up (models loaded) on other
  photos beforehand.
- baseline ("bare loop"): N processes (multiprocessing, fork), each a plain for
  loop over the same photos, taking the next one from a shared counter so that
  the processes finish together (--static-split: every N-th): decode at analysis size
  (processing.images.open_upright), then dlib directly: the HOG detector at
  upsample 0, the 5-point landmarks and the ResNet descriptor of every face.
  No CPU guard, no metrics, no quality. Models load before the clock starts.
- each round runs the bare loop just before and just after the queue, on the
  same photos, and compares the queue with the mean of the two: the machine is
  shared, and its speed drifts between runs.
- each queue round also reads, from /proc, the CPU seconds the cluster's
  processes used during it: the workers' (their share of the round's wall
  time tells whether they waited for anything) and the rest of the cluster's
  (sentinel, pusher, monitor).
- the cluster idle for --idle seconds (10 by default) after the rounds: the
  CPU its processes use when nothing is queued (the ORM broker's polling).
- "loop + renditions": the same loop that also writes the thumbnail and web
  JPEG bytes (no storage, no database), once, beside a bare loop, to tell
  rendition cost from queue cost.

Prints photos/s for each (and per process), the ratio queue / bare loop (goal
>= 0.9), and faces described per second: the queue's upsampled pass finds
faces the bare loop cannot see, and each costs a descriptor. Each round also
prints the tails: how long before the end the first loop process, or the first
queue worker, ran out of work (photos differ in cost by their faces).

Then the web-size copy's JPEG encoding with and without `optimize` (the
pipeline leaves it off there), and the latency of a small upload (--burst photos, 5 by default): the time
from the enqueue to the last photo done, as one batch (what enqueue_photos did
before) and spread over the idle workers (what it does now), alternately.

    .venv/bin/python bench/processing_throughput.py [--workers 2] [--photos 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack, django_setup, make_user, out, ratio, settled, wait_for
from bench.images import face_photos
from testsupport.processes import cpu_seconds, descendants

BAR_RATIO = 0.9
SEED_SECONDS_PER_PHOTO = 5.0

_PHOTOS: list[tuple[str, bytes]] = []


def _shares(index: int, workers: int, counter: Any) -> Iterator[tuple[str, bytes]]:
    """The photos one baseline process works on: the next one nobody took yet, or (no `counter`) every N-th."""
    if counter is None:
        yield from _PHOTOS[index::workers]
        return
    while True:
        with counter.get_lock():
            taken = counter.value
            counter.value += 1
        if taken >= len(_PHOTOS):
            return
        yield _PHOTOS[taken]


def _loop(index: int, workers: int, renditions: bool, barrier: Any, results: Any, counter: Any) -> None:
    """One baseline process: load models, wait for the others, loop over its photos.

    Bare dlib on the image the pipeline would analyse: HOG at upsample 0,
    5-point landmarks and a ResNet descriptor per face, and nothing else.
    """
    import numpy as np
    from django.conf import settings

    from processing.backends.local import models
    from processing.images import jpeg_bytes, open_upright

    m = models()
    barrier.wait()
    per_photo: dict[str, tuple[float, int]] = {}
    started = time.perf_counter()
    for name, data in _shares(index, workers, counter):
        photo_started = time.perf_counter()
        image = open_upright(io.BytesIO(data), settings.PHOTO_ANALYSIS_MAX_SIDE)
        if renditions:
            jpeg_bytes(image, settings.PHOTO_THUMBNAIL_MAX_SIDE, 80)
            jpeg_bytes(image, settings.PHOTO_WEB_MAX_SIDE, optimize=False)
        array = np.asarray(image)
        faces = 0
        for rect in m.detector(array, 0):
            m.encoder.compute_face_descriptor(array, m.shape_predictor(array, rect), 1)
            faces += 1
        per_photo[name] = (time.perf_counter() - photo_started, faces)
    results.put((time.perf_counter() - started, per_photo))


@dataclass(frozen=True)
class Round:
    """One run over the photos: wall seconds, faces described, and each photo's (seconds, faces) by name."""

    wall: float
    faces: int
    per_photo: dict[str, tuple[float, int]]
    # The first process or worker's lead on the last: they did not finish together.
    tail: float


def bare_loop(workers: int, renditions: bool, static: bool = False) -> Round:
    """N loop processes over all photos.

    The processes take the next photo from a shared counter, so that they
    finish together, as the queue's workers do; with `static`, each takes
    every N-th photo, which leaves one working alone at the end.
    """
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    counter = None if static else context.Value("i", 0)
    procs = [
        context.Process(target=_loop, args=(i, workers, renditions, barrier, results, counter)) for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get(timeout=3600) for _ in procs]
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join()
    times = [seconds for seconds, _ in outcomes]
    per_photo = {name: figures for _, share in outcomes for name, figures in share.items()}
    faces = sum(count for _, count in per_photo.values())
    return Round(wall=wall, faces=faces, per_photo=per_photo, tail=max(times) - min(times))


def store(event: Any, owner: Any, photos: list[tuple[str, bytes]]) -> list[int]:
    """Store photos as an upload would, without enqueueing them; returns their ids."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from gallery.uploads import accept_uploads

    uploads = [SimpleUploadedFile(name, data, content_type="image/jpeg") for name, data in photos]
    accepted, rejected = accept_uploads(event, owner, uploads, enqueue=False)  # type: ignore[arg-type]
    if rejected:
        raise RuntimeError(f"rejected: {rejected}")
    return [a.photo.pk for a in accepted]


def cluster_cpu_seconds(cluster_pid: int) -> dict[int, float]:
    """CPU seconds used so far by the cluster's process and each of its descendants, by pid."""
    return {pid: cpu_seconds([pid]) for pid in [cluster_pid, *descendants(cluster_pid)]}


def cpu_split(before: dict[int, float], after: dict[int, float], workers: set[int]) -> tuple[float, float]:
    """CPU seconds used between two `cluster_cpu_seconds` readings: by the `workers` pids, and by the others."""
    used = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    mine = sum(seconds for pid, seconds in used.items() if pid in workers)
    return mine, sum(used.values()) - mine


@dataclass(frozen=True)
class QueueRound(Round):
    """A queue run: from the enqueue to the last photo done; a photo's seconds are its processing_ms."""

    mean_ms: float
    # From the enqueue to the first photo started (the broker's poll).
    start: float
    # CPU seconds of the workers that processed the photos, and of the cluster's other processes.
    worker_cpu: float = 0.0
    other_cpu: float = 0.0


def queue_run(
    event: Any, owner: Any, photos: list[tuple[str, bytes]], timeout: float, cluster_pid: int | None = None
) -> QueueRound:
    """Enqueue the stored photos and wait for them all to be done.

    With `cluster_pid` (the cluster's main process), the round also reads the
    CPU seconds its processes used meanwhile.
    """
    from django.utils import timezone

    from gallery.models import Photo, PhotoStatus
    from processing.tasks import enqueue_photos

    ids = store(event, owner, photos)
    cpu_before = cluster_cpu_seconds(cluster_pid) if cluster_pid else {}
    started = timezone.now()
    enqueue_photos(ids)
    wait_for(lambda: settled(event.pk), timeout, "the queue to drain", interval=0.25)
    cpu_after = cluster_cpu_seconds(cluster_pid) if cluster_pid else {}
    done = Photo.objects.filter(pk__in=ids)
    failed = done.exclude(status=PhotoStatus.DONE).count()
    if failed:
        raise RuntimeError(f"{failed} photos did not finish: {list(done.values_list('status', 'error'))[:5]}")
    per_photo: dict[str, tuple[float, int]] = {}
    first_start: datetime | None = None
    # Each worker's last photo done; the first of them is when a worker ran out of work.
    worker_last: dict[str, datetime] = {}
    rows = done.values_list("filename", "processing_ms", "face_count", "started_at", "finished_at", "worker")
    for name, ms, faces, started_at, finished_at, worker in rows:
        # Every photo is done here, so each has its times.
        assert started_at is not None and finished_at is not None
        per_photo[name] = ((ms or 0) / 1000, faces)
        first_start = min(started_at, first_start or started_at)
        worker_last[worker] = max(finished_at, worker_last.get(worker, finished_at))
    last = max(worker_last.values())
    # A worker's identity is host:pid (processing.tasks.worker_identity).
    worker_pids = {int(worker.rpartition(":")[2]) for worker in worker_last}
    worker_cpu, other_cpu = cpu_split(cpu_before, cpu_after, worker_pids)
    return QueueRound(
        wall=(last - started).total_seconds(),
        faces=sum(faces for _, faces in per_photo.values()),
        per_photo=per_photo,
        mean_ms=1000 * statistics.mean(seconds for seconds, _ in per_photo.values()),
        start=((first_start or started) - started).total_seconds(),
        tail=(last - min(worker_last.values())).total_seconds(),
        worker_cpu=worker_cpu,
        other_cpu=other_cpu,
    )


def burst_run(event: Any, owner: Any, photos: list[tuple[str, bytes]], timeout: float, spread: bool) -> float:
    """Seconds from enqueueing a small upload to its last photo done: spread over the workers, or as one batch."""
    from django.db.models import Max
    from django.utils import timezone
    from django_q.tasks import async_task

    from gallery.models import Photo
    from processing.tasks import PROCESS_PHOTOS, enqueue_photos

    ids = store(event, owner, photos)
    started = timezone.now()
    if spread:
        enqueue_photos(ids)
    else:
        # What enqueue_photos did before: one batch of up to PHOTO_QUEUE_BATCH_SIZE.
        Photo.objects.filter(pk__in=ids).update(dispatched_at=started)
        async_task(PROCESS_PHOTOS, ids, task_name=f"photos-{ids[0]}-{ids[-1]}", group="photos")
    wait_for(lambda: settled(event.pk), timeout, "the burst to finish", interval=0.1)
    last = Photo.objects.filter(pk__in=ids).aggregate(last=Max("finished_at"))["last"]
    return float((last - started).total_seconds())


def idle_cpu(cluster_pid: int, seconds: float) -> float:
    """CPU seconds the cluster's processes use over `seconds` with nothing queued."""
    before = cluster_cpu_seconds(cluster_pid)
    time.sleep(seconds)
    return sum(cpu_split(before, cluster_cpu_seconds(cluster_pid), set()))


def web_encoding(photos: list[tuple[str, bytes]]) -> None:
    """Encoding time and size of the web-size copy with and without `optimize`, alternately, in this process."""
    from django.conf import settings

    from processing.images import jpeg_bytes, open_upright

    images = [open_upright(io.BytesIO(data), settings.PHOTO_ANALYSIS_MAX_SIDE) for _, data in photos]
    seconds = {True: 0.0, False: 0.0}
    sizes = {True: 0, False: 0}
    for _ in range(2):
        for optimize in (True, False):
            started = time.perf_counter()
            sizes[optimize] = sum(len(jpeg_bytes(i, settings.PHOTO_WEB_MAX_SIDE, optimize=optimize)) for i in images)
            seconds[optimize] += time.perf_counter() - started
    runs = 2 * len(images)
    on, off = seconds[True] / runs * 1000, seconds[False] / runs * 1000
    out(
        f"web-size JPEG: optimize on {on:.1f} ms, {sizes[True] // len(images) // 1024} KiB; "
        f"off {off:.1f} ms, {sizes[False] // len(images) // 1024} KiB (time ratio on/off {on / off:.2f}, "
        f"size ratio {sizes[True] / sizes[False]:.3f})"
    )


def equal_work(queue: Round, loops: list[Round]) -> tuple[float, int]:
    """Seconds the bare loops (mean) spent per second of the queue's processing, on the photos where both
    describe the same number of faces, and how many photos those are."""
    names = [
        name for name, (_, faces) in queue.per_photo.items() if all(loop.per_photo[name][1] == faces for loop in loops)
    ]
    bare = sum(statistics.mean(loop.per_photo[name][0] for loop in loops) for name in names)
    spent = sum(queue.per_photo[name][0] for name in names)
    return (bare / spent if spent else 0.0), len(names)


def unequal_photos(queue: Round, loop: Round) -> list[str]:
    """One line per photo where the queue describes other faces than the bare loop: seconds and faces of each."""
    return [
        f"{name}: queue {seconds:.2f} s, {faces} faces; bare loop {loop.per_photo[name][0]:.2f} s, "
        f"{loop.per_photo[name][1]} faces"
        for name, (seconds, faces) in sorted(queue.per_photo.items())
        if loop.per_photo[name][1] != faces
    ]


def baseline(round_no: int, when: str, workers: int, static: bool) -> Round:
    """A bare loop over this round's photos, printed."""
    loop = bare_loop(workers, renditions=False, static=static)
    out(run_line(round_no, f"bare loop, {when}", loop.wall, len(_PHOTOS), loop.faces), f"(tail {loop.tail:.2f} s)")
    return loop


def run_line(round_no: int, label: str, wall: float, photos: int, faces: int) -> str:
    return f"round {round_no + 1} {label:20s} {wall:6.1f} s  {photos / wall:5.2f} photos/s  {faces} faces"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="queue workers and baseline processes (default 2)")
    parser.add_argument("--photos", type=int, default=30, help="photos per run (default 30)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="baseline/queue rounds; the bar uses their median (default 3)"
    )
    parser.add_argument("--batch-size", default="", help="PHOTO_QUEUE_BATCH_SIZE for the cluster (default: settings)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the queue")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--static-split",
        action="store_true",
        help="baseline processes take every N-th photo instead of the next free one (the baseline before 2026-12-01)",
    )
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds to measure the idle cluster's CPU for (0: skip; default 10)"
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=5,
        help="photos in one small upload for the latency runs, one batch against spread (0: skip; default 5)",
    )
    args = parser.parse_args()

    burst_rounds = 3 if args.burst else 0
    photos = face_photos(args.photos * (args.rounds + 1) + args.burst * 2 * burst_rounds)
    bursts = photos[args.photos * (args.rounds + 1) :]
    warmup, rest = photos[: args.photos], photos[args.photos :]
    _PHOTOS[:] = rest[: args.photos]
    # The bare loop runs at normal priority; on a shared machine a niced queue
    # would be measured against it with a smaller share of the CPU.
    cluster_env = {"PHOTO_QUEUE_WORKERS": str(args.workers), "FACE_BACKEND": "local", "QCLUSTER_NICE": "0"}
    if args.batch_size:
        cluster_env["PHOTO_QUEUE_BATCH_SIZE"] = args.batch_size

    with Stack(keep=args.keep) as stack:
        stack.prepare()
        django_setup(stack)
        from django.conf import settings
        from django_q.models import Schedule

        from gallery.models import Event

        owner, _ = make_user("bench-photographer", photographer=True)
        batch = args.batch_size or str(settings.PHOTO_QUEUE_BATCH_SIZE)
        out(f"{args.photos} photos per run, {args.workers} workers, batch size {batch}")
        bare: list[float] = []
        queue: list[float] = []
        # Faces described per second: the queue finds more faces than the bare
        # loop (its upsampled pass on photos with small faces), each a ResNet pass.
        bare_faces: list[float] = []
        queue_faces: list[float] = []
        queue_ms: list[float] = []
        # The queue's tail: from the first worker out of work to the last photo done.
        tails: list[float] = []
        # The workers' CPU seconds against their wall time, and the other cluster processes' CPU seconds.
        busy: list[float] = []
        others: list[float] = []
        same: list[tuple[float, int]] = []
        # Per round, faces the bare loop described per face the queue described.
        face_shares: list[float] = []
        first_round: list[Round] = []
        cluster = stack.start_cluster(**cluster_env)
        wait_for(lambda: "[Startup] Photo queue initialized" in cluster.log, 60, "the cluster to start")
        warm_event = Event.objects.create(owner=owner, name="warm-up")
        queue_run(warm_event, owner, warmup, args.timeout)
        for round_no in range(args.rounds):
            _PHOTOS[:] = rest[round_no * args.photos : (round_no + 1) * args.photos]
            # The bare loop runs just before and just after the queue, on the
            # same photos: the machine's speed drifts, and the mean of the two
            # is the baseline at the time the queue ran.
            before = baseline(round_no, "before", args.workers, args.static_split)
            event = Event.objects.create(owner=owner, name=f"throughput {round_no}")
            run = queue_run(event, owner, _PHOTOS, args.timeout, cluster_pid=cluster.pid)
            queue.append(args.photos / run.wall)
            queue_faces.append(run.faces / run.wall)
            queue_ms.append(run.mean_ms)
            tails.append(run.tail)
            busy.append(run.worker_cpu / (args.workers * run.wall))
            others.append(run.other_cpu)
            out(
                run_line(round_no, f"queue, {args.workers} workers", run.wall, args.photos, run.faces),
                f"(mean {run.mean_ms:.0f} ms/photo; first photo started at {run.start:.2f} s, tail {run.tail:.2f} s;",
                f"workers on CPU {busy[-1]:.0%} of the time, rest of the cluster {run.other_cpu:.2f} CPU-s)",
            )
            bracket = [before, baseline(round_no, "after", args.workers, args.static_split)]
            bare.append(statistics.mean(args.photos / loop.wall for loop in bracket))
            bare_faces.extend(loop.faces / loop.wall for loop in bracket)
            same.append(equal_work(run, bracket))
            face_shares.append(before.faces / run.faces if run.faces else 1.0)
            if not first_round:
                first_round[:] = [run, *bracket]
        if args.idle:
            # The last round's event refresh runs EVENT_REFRESH_DELAY after it: wait it out first.
            refreshes = Schedule.objects.filter(name__startswith="refresh-event-")
            wait_for(lambda: not refreshes.exists(), 120, "the event refreshes to run", interval=0.5)
            idle = idle_cpu(cluster.pid, args.idle)
            out(f"cluster idle {args.idle:.0f} s: {idle:.2f} CPU-s ({idle / args.idle:.1%} of a core)")
        # Rendition cost, once, against a bare loop run beside it on the same photos.
        loop = bare_loop(args.workers, renditions=True, static=args.static_split)
        rendered = args.photos / loop.wall
        out(run_line(args.rounds - 1, "loop + renditions", loop.wall, args.photos, loop.faces))
        loop = bare_loop(args.workers, renditions=False, static=args.static_split)
        rend_bare = args.photos / loop.wall
        out(run_line(args.rounds - 1, "bare loop", loop.wall, args.photos, loop.faces))

        latency: dict[bool, list[float]] = {False: [], True: []}
        for round_no in range(burst_rounds):
            for spread in (False, True):
                chunk = bursts[: args.burst]
                bursts = bursts[args.burst :]
                event = Event.objects.create(owner=owner, name=f"burst {round_no} {spread}")
                seconds = burst_run(event, owner, chunk, args.timeout, spread)
                latency[spread].append(seconds)
                label = "spread" if spread else "one batch"
                out(f"burst {round_no + 1} {args.burst} photos, {label:9s} {seconds:6.2f} s to the last photo done")

    q, b, r = sum(queue) / len(queue), sum(bare) / len(bare), rendered
    out("")
    n = args.workers
    out(f"bare loop ({n} processes): {b:.2f} photos/s, {b / n:.2f} per process ({n / b:.2f} s per photo per process)")
    out(
        f"loop + renditions:           {r:.2f} photos/s, {r / n:.2f} per process "
        f"({ratio(r, rend_bare)} of the bare loop beside it)"
    )
    out(f"queue ({n} workers):         {q:.2f} photos/s, {q / n:.2f} per worker")
    bf, qf = statistics.median(bare_faces), statistics.median(queue_faces)
    out(f"faces described per second (median of rounds): bare loop {bf:.1f}, queue {qf:.1f}, ratio {ratio(qf, bf)}")
    share = statistics.median(face_shares)
    out(
        f"faces described, bare loop / queue (median of rounds): {share:.2f}; describing as many faces per second "
        f"as the bare loop, the queue's ratio of photos/s is this (its extra faces are its upsampled looks' finds)"
    )
    ratios = sorted(queue[i] / bare[i] for i in range(args.rounds))
    median = statistics.median(ratios)
    out(
        f"ratio queue / bare loop: {ratio(q, b)} (mean rates); per round {', '.join(f'{x:.2f}' for x in ratios)}, "
        f"median {median:.2f} (each round against the mean of the bare loops just before and after it)"
    )
    out(f"queue tail, first worker idle to last photo done (median of rounds): {statistics.median(tails):.2f} s")
    out(
        f"queue workers on CPU {statistics.median(busy):.0%} of the round's wall time, the cluster's other "
        f"processes {statistics.median(others):.2f} CPU-s per round (medians of rounds)"
    )
    equal = statistics.median(r for r, _ in same)
    out(
        f"on the photos where the queue describes the same faces as the bare loop ({same[0][1]} of {args.photos} "
        f"in round 1): bare loop seconds per queue processing second {equal:.2f} (median of rounds); the others "
        f"(mostly faces under 80 px, which only the queue's upsampled looks find):"
    )
    for line in unequal_photos(first_round[0], first_round[1]):
        out(f"  round 1, {line}")
    costs = sorted(seconds for seconds, _ in first_round[0].per_photo.values())
    out(
        f"queue processing per photo, round 1: {costs[0] * 1000:.0f} ms to {costs[-1] * 1000:.0f} ms "
        f"(median {statistics.median(costs) * 1000:.0f} ms)"
    )
    met = median >= BAR_RATIO
    out(f"bar ratio >= {BAR_RATIO} (median of rounds): {'MET' if met else 'MISSED'}")
    out(
        f"seed promise ~{SEED_SECONDS_PER_PHOTO:.0f} s per photo: the queue takes "
        f"{sum(queue_ms) / len(queue_ms) / 1000:.2f} s per photo per worker, {1 / q:.2f} s per photo overall"
    )
    web_encoding(_PHOTOS)
    if burst_rounds:
        one, spread_median = statistics.median(latency[False]), statistics.median(latency[True])
        out(
            f"{args.burst} photos, upload to last done (median of {burst_rounds}): one batch {one:.2f} s, "
            f"spread over the workers {spread_median:.2f} s (ratio {spread_median / one:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
