from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Gallery"

    def ready(self) -> None:
        from gallery import checks, signals  # noqa: F401
