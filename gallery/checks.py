from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string


@register()
def check_storage(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.STORAGE_BACKEND == "s3" and not getattr(settings, "AWS_STORAGE_BUCKET_NAME", ""):
        messages.append(Error("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME.", id="gallery.E001"))
    if settings.STORAGE_BACKEND == "local":
        try:
            settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            messages.append(Error(f"MEDIA_ROOT {settings.MEDIA_ROOT} is not writable: {exc}", id="gallery.E002"))
    if not 0.2 <= settings.FACE_MATCH_THRESHOLD <= 1.0:
        messages.append(
            Warning(
                f"FACE_MATCH_THRESHOLD={settings.FACE_MATCH_THRESHOLD} is outside 0.2..1.0; "
                "dlib descriptors of one person are usually within 0.6.",
                id="gallery.W001",
            )
        )
    if settings.FACE_MATCH_GROUP_THRESHOLD > settings.FACE_MATCH_THRESHOLD:
        messages.append(
            Error(
                f"FACE_MATCH_GROUP_THRESHOLD={settings.FACE_MATCH_GROUP_THRESHOLD} is above "
                f"FACE_MATCH_THRESHOLD={settings.FACE_MATCH_THRESHOLD}; groups need a closer mean than lone faces.",
                id="gallery.E003",
            )
        )
    if settings.FACE_MATCH_LIVE_THRESHOLD > settings.FACE_MATCH_THRESHOLD:
        messages.append(
            Warning(
                f"FACE_MATCH_LIVE_THRESHOLD={settings.FACE_MATCH_LIVE_THRESHOLD} is above "
                f"FACE_MATCH_THRESHOLD={settings.FACE_MATCH_THRESHOLD}; guests would be shown, until the "
                "event-wide pass, faces that the pass itself does not give them.",
                id="gallery.W002",
            )
        )
    if settings.FACE_MATCH_RADIUS < settings.FACE_MATCH_THRESHOLD:
        messages.append(
            Error(
                f"FACE_MATCH_RADIUS={settings.FACE_MATCH_RADIUS} is below FACE_MATCH_THRESHOLD="
                f"{settings.FACE_MATCH_THRESHOLD}; faces a selfie could match would never be considered.",
                id="gallery.E004",
            )
        )
    return messages


@register()
def check_email_backend(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """EMAIL_BACKEND must name a class that exists: alerts and sign-in links would fail one by one otherwise."""
    try:
        import_string(settings.EMAIL_BACKEND)
    except ImportError as exc:
        return [
            Error(
                f"EMAIL_BACKEND={settings.EMAIL_BACKEND!r} cannot be imported ({exc}); use console, smtp or "
                "the dotted path of a backend such as anymail.backends.mailgun.EmailBackend.",
                id="gallery.E010",
            )
        ]
    return []


@register()
def check_message_catalogues(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Without its compiled catalogue, a language's pages silently fall back to English."""
    messages: list[CheckMessage] = []
    for code, _name in settings.LANGUAGES:
        if code == "en":  # the language of the code itself
            continue
        compiled = [Path(folder) / code / "LC_MESSAGES" / "django.mo" for folder in settings.LOCALE_PATHS]
        stale = [mo for mo in compiled if not _compiled_and_current(mo)]
        if stale:
            messages.append(
                Warning(
                    f"The {code} message catalogue is not compiled or older than its .po file ({stale[0]}); "
                    "its pages would show English.",
                    hint="Run bash scripts/messages compile (it needs GNU gettext's msgfmt).",
                    id="gallery.W010",
                )
            )
    return messages


def _compiled_and_current(mo: Path) -> bool:
    po = mo.with_suffix(".po")
    return mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime)
