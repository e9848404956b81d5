from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    name = "processing"
    verbose_name = "Processing"

    def ready(self) -> None:
        from processing import checks  # noqa: F401
