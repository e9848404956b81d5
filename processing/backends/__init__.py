"""Face backends, chosen by the FACE_BACKEND setting and imported only when used."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from django.conf import settings

from .base import FaceBackend

BACKENDS = {
    "local": "processing.backends.local.LocalBackend",
    "rekognition": "processing.backends.rekognition.RekognitionBackend",
}


@cache
def get_backend(name: str | None = None) -> FaceBackend:
    """The backend instance for `name` (default: settings.FACE_BACKEND), one per process."""
    key = name or settings.FACE_BACKEND
    path = BACKENDS.get(key, key)
    module_name, class_name = path.rsplit(".", 1)
    backend_class = getattr(import_module(module_name), class_name)
    backend: FaceBackend = backend_class()
    return backend
