"""Static files storage that works before and after `collectstatic`."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class CollectedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """whitenoise's hashed, compressed names once `collectstatic` has run; plain names before.

    Before the first `collectstatic` (tests, a first runserver) there is no
    manifest, and the manifest storage would refuse every `{% static %}`;
    whitenoise then serves the files from the app folders under their plain
    names (WHITENOISE_USE_FINDERS). The manifest is read when the storage is
    first used, so the settings need not look at STATIC_ROOT.
    """

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:
            return name
        return str(super().stored_name(name))
