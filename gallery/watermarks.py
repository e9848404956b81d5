"""The watermark form shared by the studio page and the API: one set of rules for both."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy

from gallery.models import Event, WatermarkPosition
from processing.services import InvalidImage, WatermarkSettings, check_logo

LOGO_MAX_BYTES = 5 * 1024 * 1024


class WatermarkForm(forms.Form):
    """Opacity and size are in percent here; the API speaks fractions and converts."""

    text = forms.CharField(
        max_length=100,
        required=False,
        label=gettext_lazy("Text"),
        help_text=gettext_lazy("Leave empty and remove the logo for no watermark."),
    )
    logo = forms.FileField(
        required=False, label=gettext_lazy("Logo (PNG)"), help_text=gettext_lazy("Used instead of the text.")
    )
    clear_logo = forms.BooleanField(required=False, label=gettext_lazy("Remove the logo"))
    position = forms.ChoiceField(choices=WatermarkPosition.choices, label=gettext_lazy("Position"))
    opacity = forms.IntegerField(min_value=5, max_value=100, label=gettext_lazy("Opacity (%)"))
    size = forms.IntegerField(min_value=2, max_value=100, label=gettext_lazy("Width (% of the photo)"))
    guests_get_originals = forms.BooleanField(
        required=False,
        label=gettext_lazy("Guests may download originals without the watermark"),
    )

    @classmethod
    def for_event(cls, event: Event, data: Any = None, files: Any = None) -> WatermarkForm:
        initial = {
            "text": event.watermark_text,
            "position": event.watermark_position,
            "opacity": round(event.watermark_opacity * 100),
            "size": round(event.watermark_size * 100),
            "guests_get_originals": event.guests_get_originals,
        }
        return cls(data, files, initial=initial)

    def clean_logo(self) -> UploadedFile | None:
        logo: UploadedFile | None = self.cleaned_data.get("logo")
        if logo is None:
            return None
        if (logo.size or 0) > LOGO_MAX_BYTES:
            raise forms.ValidationError(gettext_lazy("The logo is too large (5 MB at most)."))
        try:
            check_logo(logo)
        except InvalidImage as exc:
            raise forms.ValidationError(str(exc)) from None
        return logo

    def settings(self) -> WatermarkSettings:
        """The validated watermark (call after `is_valid()`)."""
        data = self.cleaned_data
        return WatermarkSettings(
            text=data["text"],
            position=data["position"],
            opacity=data["opacity"] / 100,
            size=data["size"] / 100,
            guests_get_originals=data["guests_get_originals"],
            logo=data["logo"],
            clear_logo=data["clear_logo"] and data["logo"] is None,
        )


def watermark_json(event: Event) -> dict[str, Any]:
    """The event's watermark as the API shows it (opacity and size as fractions)."""
    return {
        "text": event.watermark_text,
        "has_logo": bool(event.watermark_logo),
        "position": event.watermark_position,
        "opacity": event.watermark_opacity,
        "size": event.watermark_size,
        "guests_get_originals": event.guests_get_originals,
        "active": event.has_watermark,
        "version": event.watermark_version,
    }
