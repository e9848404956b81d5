from django.apps import AppConfig
from django.core import checks as django_checks
from django.utils.translation import gettext_lazy as _


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = _("Gallery")

    def ready(self) -> None:
        from gallery import checks, signals  # noqa: F401
        from photoevent.client_ip import check_proxy_settings

        django_checks.register(check_proxy_settings, django_checks.Tags.security)
