"""Upload acknowledgement: 100 camera JPEGs (~3 MB, 6000x4000) in batches of 10.

Times the upload to a live photoevent (gunicorn, production settings, fresh
DATA_DIR) against a baseline: the same multipart bodies POSTed to
bench/discard_app.py, a WSGI app that reads and drops them, run by gunicorn
with the same flags. Rounds alternate baseline and photoevent; each photoevent
round uses a new event (deduplication is per event). Prints total time, p50/p95
per request and the ratio to the baseline.

    .venv/bin/python bench/upload_ack.py [--count 100] [--batch 10] [--concurrency 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.harness import Stack, auth, django_setup, ms, out, percentile, ratio
from bench.images import camera_corpus

BAR_SECONDS = 3.0
SEED_PROMISE_SECONDS = 10.0


def multipart_bodies(paths: list[Path], batch: int) -> list[tuple[bytes, str]]:
    """One prepared multipart body (and its content type) per batch, built once."""
    bodies = []
    for start in range(0, len(paths), batch):
        files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in paths[start : start + batch]]
        prepared = requests.Request("POST", "http://127.0.0.1/", files=files).prepare()
        assert isinstance(prepared.body, bytes)
        bodies.append((prepared.body, str(prepared.headers["Content-Type"])))
    return bodies


def send_all(
    url: str, bodies: list[tuple[bytes, str]], headers: dict[str, str], concurrency: int
) -> tuple[float, list[float], list[requests.Response]]:
    """POST every body; returns wall time, per-request latencies and responses."""
    latencies: list[float] = []
    responses: list[requests.Response] = []

    def post(item: tuple[bytes, str]) -> None:
        body, content_type = item
        with requests.Session() as session:
            started = time.perf_counter()
            response = session.post(url, data=body, headers={**headers, "Content-Type": content_type}, timeout=300)
            latencies.append(time.perf_counter() - started)
            responses.append(response)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, bodies))
    return time.perf_counter() - started, latencies, responses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="photos to upload (default 100)")
    parser.add_argument("--batch", type=int, default=10, help="photos per request (default 10)")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/photoevent rounds (default 3)")
    parser.add_argument("--with-cluster", action="store_true", help="run a qcluster during the uploads")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    out(f"generating/caching {args.count} camera JPEGs 6000x4000 ...")
    paths = camera_corpus(args.count)
    total_mb = sum(p.stat().st_size for p in paths) / 1e6
    out(f"corpus: {args.count} files, {total_mb:.0f} MB, {total_mb / args.count:.2f} MB each")
    bodies = multipart_bodies(paths, args.batch)

    with Stack(keep=args.keep) as stack:
        stack.prepare()
        token = stack.create_photographer("bench-photographer")
        web = stack.start_web()
        discard = stack.start_web(app="bench.discard_app:app")
        if args.with_cluster:
            stack.start_cluster()
        django_setup(stack)
        from django.contrib.auth.models import User

        from gallery.models import Event, Photo

        owner = User.objects.get(username="bench-photographer")
        base_totals, app_totals = [], []
        base_lat: list[float] = []
        app_lat: list[float] = []
        errors = 0
        for round_no in range(args.rounds):
            event = Event.objects.create(owner=owner, name=f"upload bench {round_no}")
            target = f"{web.url}/api/photographer/events/{event.pk}/upload-photos"
            order = ["baseline", "photoevent"] if round_no % 2 == 0 else ["photoevent", "baseline"]
            for which in order:
                if which == "baseline":
                    total, lat, responses = send_all(discard.url + "/", bodies, {}, args.concurrency)
                    base_totals.append(total)
                    base_lat += lat
                    errors += sum(r.status_code != 202 for r in responses)
                else:
                    total, lat, responses = send_all(target, bodies, auth(token), args.concurrency)
                    app_totals.append(total)
                    app_lat += lat
                    for r in responses:
                        if r.status_code != 202 or r.json()["rejected"]:
                            errors += 1
                            out(f"  unexpected answer {r.status_code}: {r.text[:300]}")
                    stored = Photo.objects.filter(event=event).count()
                    if stored != args.count:
                        errors += 1
                        out(f"  expected {args.count} photos stored, found {stored}")
                out(f"round {round_no + 1} {which:10s}: {total:.2f} s for {args.count} photos")

    base, app = statistics.median(base_totals), statistics.median(app_totals)
    out("")
    out(
        f"upload {args.count} x {total_mb / args.count:.1f} MB in batches of {args.batch}, "
        f"concurrency {args.concurrency}"
    )
    out(
        f"  baseline (discard app): total {base:.2f} s (median of {args.rounds}), per request p50 "
        f"{ms(percentile(base_lat, 50))} p95 {ms(percentile(base_lat, 95))}"
    )
    out(
        f"  photoevent:             total {app:.2f} s (median of {args.rounds}), per request p50 "
        f"{ms(percentile(app_lat, 50))} p95 {ms(percentile(app_lat, 95))}"
    )
    out(f"  throughput: baseline {total_mb / base:.0f} MB/s, photoevent {total_mb / app:.0f} MB/s")
    out(
        f"  ratio photoevent/baseline: total {ratio(app, base)}, p95 "
        f"{ratio(percentile(app_lat, 95), percentile(base_lat, 95))}"
    )
    out(
        f"  bar: 100 photos in <= {BAR_SECONDS:.0f} s -> {'MET' if app <= BAR_SECONDS else 'MISSED'}; "
        f"seed promise {SEED_PROMISE_SECONDS:.0f} s -> {SEED_PROMISE_SECONDS / app:.1f}x faster"
    )
    out(f"  errors: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
