"""Memory: peak RSS of a web worker and of a queue worker while photos are uploaded and processed.

Starts gunicorn (production settings) and a qcluster (local dlib backend,
default worker count), records each process's idle RSS (the baseline), then
uploads --camera camera-like 6000x4000 JPEGs (~3 MB) in batches of 10 and
--faces real-face photos over HTTP, waits until all are processed and reads
each process's peak RSS (VmHWM in /proc/<pid>/status). Prints the peaks and
the ratio peak / idle.

    .venv/bin/python bench/memory.py [--camera 100] [--faces 30]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.harness import Stack, auth, django_setup, out, ratio, settled, upload_photos
from bench.images import camera_corpus, face_photos
from testsupport.processes import children, cmdline, descendants, proc_status_kb
from testsupport.waiting import wait_for


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camera", type=int, default=100, help="camera-like 24 MP JPEGs to upload (default 100)")
    parser.add_argument("--faces", type=int, default=30, help="real-face photos to upload (default 30)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for processing")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    files = [(p.name, p.read_bytes()) for p in camera_corpus(args.camera)] + face_photos(args.faces)
    with Stack(keep=args.keep) as stack:
        stack.prepare()
        token = stack.create_photographer("bench-photographer")
        web = stack.start_web()
        cluster = stack.start_cluster(FACE_BACKEND="local")
        django_setup(stack)
        from django.contrib.auth.models import User

        from gallery.models import Event, Photo

        event = Event.objects.create(owner=User.objects.get(username="bench-photographer"), name="memory")
        requests.get(f"{web.url}/api/photographer/events", headers=auth(token), timeout=30)
        web_pids = children(web.pid)
        queue_pids = descendants(cluster.pid)
        idle = {pid: proc_status_kb(pid, "VmRSS") for pid in web_pids + queue_pids}
        out(f"uploading {len(files)} photos ({sum(len(d) for _, d in files) / 1e6:.0f} MB) and processing them ...")
        upload_photos(f"{web.url}/api/photographer/events/{event.pk}/upload-photos", token, files, 10, timeout=300)
        wait_for(lambda: settled(event.pk), args.timeout, "processing to finish", interval=1.0)
        worker_pids = {int(w.rpartition(":")[2]) for w in Photo.objects.values_list("worker", flat=True) if w}
        peak = {pid: proc_status_kb(pid, "VmHWM") for pid in web_pids + queue_pids}
        labels = {pid: cmdline(pid)[:60] for pid in web_pids + queue_pids}
        failed = Photo.objects.exclude(status="done").count()

    out("")
    for role, pids in (("web worker", web_pids), ("queue process", queue_pids)):
        for pid in pids:
            tag = " (processed photos)" if pid in worker_pids else ""
            out(f"  {role} {pid}{tag}: idle {mb(idle[pid])}, peak {mb(peak[pid])}  [{labels[pid]}]")
    web_peak = max(web_pids, key=lambda p: peak[p])
    workers = [p for p in queue_pids if p in worker_pids] or queue_pids
    queue_peak = max(workers, key=lambda p: peak[p])
    out(
        f"peak RSS web worker:   {mb(peak[web_peak])} (idle baseline {mb(idle[web_peak])}, "
        f"ratio {ratio(peak[web_peak], idle[web_peak])})"
    )
    out(
        f"peak RSS queue worker: {mb(peak[queue_peak])} (idle baseline {mb(idle[queue_peak])}, "
        f"ratio {ratio(peak[queue_peak], idle[queue_peak])})"
    )
    out(f"photos not done: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
