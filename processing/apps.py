from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    name = "processing"
    verbose_name = "Processing"

    def ready(self) -> None:
        """Register the system checks."""
        # Django forces this one: checks register when imported, and import
        # models, which is only allowed once the app registry is ready.
        from processing import checks  # noqa: F401
