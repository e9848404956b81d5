from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from processing.images import apply_pixel_limit


class ProcessingConfig(AppConfig):
    name = "processing"
    verbose_name = _("Processing")

    def ready(self) -> None:
        """Register the system checks and make MAX_IMAGE_PIXELS Pillow's limit in every process."""
        # Django forces this one: checks register when imported, and import
        # models, which is only allowed once the app registry is ready.
        from processing import checks  # noqa: F401

        apply_pixel_limit()
