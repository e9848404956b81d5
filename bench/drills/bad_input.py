"""Drill: the bad-input corpus against a live server.

Each case sends one kind of bad (or awkward) input and expects a precise
answer: the status and a piece of the message. After every case the server
must still answer a normal request, and at the end a normal upload must still
be processed. The photos that should be accepted (CMYK, EXIF-rotated, WebP, HEIC,
odd filenames) must also come out of the queue done, and the EXIF-rotated one
upright in its web rendition.

gunicorn with the production settings (MAX_UPLOAD_MB=8 so that "too large"
is cheap to send) and a real qcluster, both with --backend (default: local,
the real dlib backend, when ../shared/faces is there; fake otherwise).

    .venv/bin/python bench/drills/bad_input.py [--backend local|fake]
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import requests
from PIL import Image

from bench.harness import CACHE_DIR, Stack, auth, django_setup, make_user, out, verdict
from bench.images import camera_jpeg, marker_png
from testsupport.heic import heic_bytes
from testsupport.markers import FAKE_BACKEND
from testsupport.paths import FACES_DIR
from testsupport.waiting import wait_for

MAX_UPLOAD_MB = 8
# Upright portraits that dlib's HOG detector finds at selfie size, one person each.
FIVE_PORTRAITS = [
    "barack_obama/1.jpg",
    "joe_biden/1.jpg",
    "kit_harington/3.jpg",
    "rose_leslie/2.jpg",
    "angelina_jolie/4.jpg",
]


# --- the corpus -------------------------------------------------------------


def jpeg(size: tuple[int, int] = (640, 480), mode: str = "RGB", colour: Any = (90, 120, 150), **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def photo_jpeg(seed: int) -> bytes:
    """A small camera-like JPEG (distinct per seed)."""
    return camera_jpeg(seed, (800, 600))


def png_bomb(side: int = 30000) -> bytes:
    """A valid 1-bit PNG of side x side (900 MP) that weighs about 100 kB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def huge_jpeg() -> bytes:
    """A real 200-megapixel JPEG (16330 x 12250, grey), cached: about 2 MB."""
    path = CACHE_DIR / "200mp.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (16330, 12250), 128).save(path, "JPEG", quality=50)
    return path.read_bytes()


def rotated_jpeg() -> bytes:
    """Upright it is 300x400, red on top and blue below; stored as 400x300 with EXIF orientation 6."""
    upright = Image.new("RGB", (300, 400), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 300, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    return buffer.getvalue()


def webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 160, 90)).save(buffer, "WEBP")
    return buffer.getvalue()


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "GIF")
    return buffer.getvalue()


def heic_like() -> bytes:
    """The start of a HEIC file (ftyp heic box) followed by data no decoder can read."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + bytes(4000)


def heic_photo() -> bytes:
    """An iPhone-like HEIC: a noisy 640x480 picture, so that its image data is most of the file."""
    return heic_bytes(Image.effect_noise((640, 480), 64).convert("RGB"), quality=80)


def no_face_selfie(backend: str) -> bytes:
    nonfaces = FACES_DIR / "nonfaces"
    if backend == "local" and nonfaces.is_dir():
        return sorted(nonfaces.iterdir())[0].read_bytes()
    return photo_jpeg(99)


def five_face_selfie(backend: str) -> bytes:
    """Five different people side by side (real portraits, or five fake markers)."""
    if backend != "local":
        return marker_png(5, [0, 1, 2, 3, 4], size=(320, 120))
    tiles = [Image.open(FACES_DIR / "people" / name).convert("RGB") for name in FIVE_PORTRAITS]
    tiles = [t.resize((200, int(200 * t.height / t.width))) for t in tiles]
    height = max(t.height for t in tiles)
    sheet = Image.new("RGB", (200 * len(tiles) + 30 * (len(tiles) + 1), height + 60), (200, 200, 200))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (30 + i * 230, 30))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


# --- the drill --------------------------------------------------------------


@dataclass
class Case:
    name: str
    send: Callable[[], requests.Response]
    status: int
    message: str = ""
    check: Callable[[requests.Response], str] | None = None


@dataclass
class Context:
    base: str
    owner_token: str
    other_token: str
    attendee_token: str
    event_id: int
    other_event_id: int
    accepted: dict[str, int] = field(default_factory=dict)
    # Photos acknowledged with 202 although a refusal was expected: what became of them.
    unexpected: dict[str, int] = field(default_factory=dict)

    def upload(self, files: list[tuple[str, bytes]], token: str | None = None, event_id: int | None = None) -> Any:
        url = f"{self.base}/api/photographer/events/{event_id or self.event_id}/upload-photos"
        headers = auth(token or self.owner_token) if token != "" else {}
        parts = [("photos", (name, data, "application/octet-stream")) for name, data in files]
        return requests.post(url, files=parts, headers=headers, timeout=120)

    def selfie(self, data: bytes) -> Any:
        files = {"selfie": ("selfie.jpg", data, "image/jpeg")}
        return requests.post(f"{self.base}/api/me/selfie", files=files, headers=auth(self.attendee_token), timeout=120)

    def remember(self, key: str) -> Callable[[requests.Response], str]:
        def check(response: requests.Response) -> str:
            jobs = response.json().get("jobs", [])
            if len(jobs) != 1:
                return f"expected one job, got {jobs}"
            self.accepted[key] = jobs[0]["photo_id"]
            return ""

        return check


def cases(ctx: Context, backend: str) -> list[Case]:
    long_name = "x" * 10_000 + ".jpg"

    def filename_is(expected: Callable[[str], bool], key: str) -> Callable[[requests.Response], str]:
        def check(response: requests.Response) -> str:
            jobs = response.json().get("jobs", [])
            if len(jobs) != 1 or not expected(jobs[0]["filename"]):
                return f"unexpected stored filename {jobs[0]['filename'][:80] if jobs else jobs!r}"
            ctx.accepted[key] = jobs[0]["photo_id"]
            return ""

        return check

    def faces_found(n: int) -> Callable[[requests.Response], str]:
        def check(response: requests.Response) -> str:
            found = response.json().get("faces_found")
            return "" if found == n else f"faces_found {found}, expected {n}"

        return check

    def one_rejected(response: requests.Response) -> str:
        body = response.json()
        if len(body.get("jobs", [])) != 1 or len(body.get("rejected", [])) != 1:
            return f"expected 1 job + 1 rejected, got {body}"
        return ""

    truncated = photo_jpeg(2)
    heic_cut = heic_photo()
    return [
        Case("zero bytes", lambda: ctx.upload([("empty.jpg", b"")]), 400, "The file is empty"),
        Case(
            "truncated JPEG",
            lambda: ctx.upload([("cut.jpg", truncated[: len(truncated) // 2])]),
            400,
            "truncated",
        ),
        Case("text named .jpg", lambda: ctx.upload([("notes.jpg", b"hello, I am text\n" * 50)]), 400, "not an image"),
        Case("PNG decompression bomb", lambda: ctx.upload([("bomb.png", png_bomb())]), 400, "too many pixels"),
        Case("200 MP JPEG", lambda: ctx.upload([("huge.jpg", huge_jpeg())]), 400, "too many pixels"),
        Case(
            f"file over MAX_UPLOAD_MB={MAX_UPLOAD_MB}",
            lambda: ctx.upload([("big.jpg", b"\xff\xd8\xff" + bytes((MAX_UPLOAD_MB + 1) * 1024 * 1024))]),
            400,
            "larger than",
        ),
        Case("GIF (unsupported type)", lambda: ctx.upload([("anim.gif", gif())]), 400, "Unsupported image type GIF"),
        Case("HEIC header and zeros", lambda: ctx.upload([("phone.heic", heic_like())]), 400, "not an image"),
        Case(
            "truncated HEIC",
            lambda: ctx.upload([("cut.heic", heic_cut[: len(heic_cut) * 9 // 10])]),
            400,
            "truncated",
        ),
        Case(
            "HEIC (accepted, processed)",
            lambda: ctx.upload([("IMG_0001.HEIC", heic_photo())]),
            202,
            "",
            ctx.remember("heic"),
        ),
        Case(
            "WebP (accepted)",
            lambda: ctx.upload([("photo.webp", webp())]),
            202,
            "",
            ctx.remember("webp"),
        ),
        Case(
            "CMYK JPEG (accepted, processed)",
            lambda: ctx.upload([("cmyk.jpg", jpeg(mode="CMYK", colour=(10, 80, 20, 5)))]),
            202,
            "",
            ctx.remember("cmyk"),
        ),
        Case(
            "EXIF-rotated JPEG (accepted, upright)",
            lambda: ctx.upload([("rotated.jpg", rotated_jpeg())]),
            202,
            "",
            ctx.remember("rotated"),
        ),
        Case(
            "path-traversal filename",
            lambda: ctx.upload([("../../../../etc/passwd.jpg", photo_jpeg(3))]),
            202,
            "",
            filename_is(lambda name: name == "passwd.jpg", "traversal"),
        ),
        # Django's multipart parser caps part headers (MAX_TOTAL_HEADER_SIZE): a clear 400.
        Case(
            "10,000-character filename",
            lambda: ctx.upload([(long_name, photo_jpeg(4))]),
            400,
            "header size exceeded",
        ),
        Case(
            "200-character filename (accepted, kept whole)",
            lambda: ctx.upload([("y" * 196 + ".jpg", photo_jpeg(13))]),
            202,
            "",
            filename_is(lambda name: name == "y" * 196 + ".jpg", "long-name"),
        ),
        Case(
            "same file twice in one request",
            lambda: ctx.upload([("a.jpg", photo_jpeg(5)), ("b.jpg", photo_jpeg(5))]),
            202,
            "appears twice",
            one_rejected,
        ),
        Case(
            "missing photos field",
            lambda: requests.post(
                f"{ctx.base}/api/photographer/events/{ctx.event_id}/upload-photos",
                files={"pictures": ("a.jpg", photo_jpeg(6), "image/jpeg")},
                headers=auth(ctx.owner_token),
                timeout=60,
            ),
            400,
            "multipart field 'photos'",
        ),
        Case("wrong event id", lambda: ctx.upload([("a.jpg", photo_jpeg(7))], event_id=999_999), 404, "not found"),
        Case(
            "another photographer's event (404: ids do not leak)",
            lambda: ctx.upload([("a.jpg", photo_jpeg(8))], token=ctx.other_token),
            404,
            "not found",
        ),
        Case(
            "no token", lambda: ctx.upload([("a.jpg", photo_jpeg(9))], token=""), 401, "credentials were not provided"
        ),
        Case("invalid token", lambda: ctx.upload([("a.jpg", photo_jpeg(10))], token="0" * 40), 401, "Invalid token"),
        Case(
            "attendee token on the photographer endpoint",
            lambda: ctx.upload([("a.jpg", photo_jpeg(11))], token=ctx.attendee_token),
            403,
            "Only photographers",
        ),
        Case("selfie with no face", lambda: ctx.selfie(no_face_selfie(backend)), 400, "No face found"),
        Case("empty selfie", lambda: ctx.selfie(b""), 400, ""),
        Case(
            "selfie with 5 faces (accepted: largest face used)",
            lambda: ctx.selfie(five_face_selfie(backend)),
            200,
            "",
            faces_found(5),
        ),
    ]


def run(backend: str = "local", keep: bool = False) -> bool:
    """Run the drill; True when it passes."""
    env = {
        "MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "FACE_BACKEND": "local" if backend == "local" else FAKE_BACKEND,
    }
    with Stack(keep=keep, env=env) as stack:
        stack.prepare()
        django_setup(stack)
        from django.conf import settings
        from django.core.files.storage import default_storage

        from gallery.models import Event, Membership, Photo, PhotoStatus

        owner, owner_token = make_user("owner", photographer=True)
        other, other_token = make_user("other", photographer=True)
        attendee, attendee_token = make_user("attendee")
        event = Event.objects.create(owner=owner, name="bad input")
        other_event = Event.objects.create(owner=other, name="someone else's")
        Membership.objects.create(user=attendee, event=event)
        web = stack.start_web()
        stack.start_cluster()
        ctx = Context(web.url, owner_token, other_token, attendee_token, event.pk, other_event.pk)

        def healthy() -> bool:
            try:
                r = requests.get(f"{web.url}/api/photographer/events", headers=auth(owner_token), timeout=30)
            except requests.RequestException:
                return False
            return r.status_code == 200

        results = []
        for case in cases(ctx, backend):
            try:
                response = case.send()
                status = response.status_code
                try:
                    body = response.json()
                except ValueError:
                    body = {"detail": response.text[:200]}
                text = str(body)
                problem = ""
                if status != case.status:
                    problem = f"status {status}, expected {case.status}"
                    for job in body.get("jobs", []) if status == 202 else []:
                        ctx.unexpected[case.name] = job["photo_id"]
                elif case.message and case.message.lower() not in text.lower():
                    problem = f"message lacks {case.message!r}"
                elif case.check is not None:
                    problem = case.check(response)
            except Exception as exc:  # noqa: BLE001 - a drill reports every failure as a figure
                status, text, problem = 0, "", f"{type(exc).__name__}: {exc}"
            alive = healthy()
            ok = not problem and alive
            results.append(ok)
            detail = text.replace("\n", " ")[:110]
            out(f"  {verdict(ok)} {case.name}: {status} {detail}{'' if alive else ' SERVER DOWN AFTERWARDS'}")
            if problem:
                out(f"       {problem}")

        # The accepted photos must be processed; the rotated one upright.
        final = ctx.upload([("after.jpg", photo_jpeg(12))])
        results.append(final.status_code == 202)
        wait_for(
            lambda: (
                not Photo.objects.filter(event=event, status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING]).exists()
            ),
            180,
            "the accepted photos to be processed",
        )
        for key, pk in ctx.accepted.items():
            photo = Photo.objects.get(pk=pk)
            ok = photo.status == PhotoStatus.DONE
            note = f"{photo.status} {photo.error[:80]}"
            if ok and key == "rotated":
                with default_storage.open(str(photo.web.name), "rb") as handle:
                    web_image = Image.open(handle).convert("RGB")
                    array = np.asarray(web_image)
                top, bottom = array[5, array.shape[1] // 2], array[-5, array.shape[1] // 2]
                upright = web_image.height > web_image.width and top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]
                ok = upright
                note += (
                    f", web rendition {web_image.width}x{web_image.height}, top {tuple(top)}, bottom {tuple(bottom)}"
                )
            if ok and key == "traversal":
                media = Path(settings.MEDIA_ROOT).resolve()
                stored_name = str(photo.original.name)
                stored = (media / stored_name).resolve()
                ok = stored.is_relative_to(media) and "passwd" not in stored_name
                note += f", stored as {photo.original.name}"
            results.append(ok)
            out(f"  {verdict(ok)} processing of {key} photo {pk}: {note}")
        for name, pk in ctx.unexpected.items():
            photo = Photo.objects.get(pk=pk)
            out(f"  (the {name} acknowledged with 202 ended {photo.status}: {photo.error[:120]})")
        processed = Photo.objects.filter(event=event, status=PhotoStatus.DONE).count()
        crashed = "Traceback" in "".join(p.log for p in stack.procs if p.name == "gunicorn")
        alive = healthy()
        results.append(alive and not crashed)
        out(
            f"  {verdict(alive and not crashed)} server afterwards: answers {alive}, "
            f"tracebacks in the web log {crashed}; photos processed {processed}"
        )
        kinds = len(results)
        passed = sum(results)
        ok = all(results)
        out(
            f"{verdict(ok)} bad_input: {passed}/{kinds} checks passed "
            f"({len(cases(ctx, backend))} inputs, backend {backend})"
        )
        return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = "local" if (FACES_DIR / "manifest.json").exists() else "fake"
    parser.add_argument("--backend", choices=["local", "fake"], default=default)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    return 0 if run(args.backend, args.keep) else 1


if __name__ == "__main__":
    sys.exit(main())
