"""The MAX_IMAGE_PIXELS setting is Pillow's real limit, and refusals cite it (issue 15, row 9)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from processing.images import InvalidImage, inspect_image, open_upright

LIMIT = 1_000_000


def png(width: int, height: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


@pytest.fixture
def pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever Pillow's own default, the test restores it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.mark.parametrize("check", [inspect_image, open_upright])
def test_just_over_the_setting_is_refused_citing_the_setting(settings: Any, pillow_limit: None, check: Any) -> None:
    settings.MAX_IMAGE_PIXELS = LIMIT
    with pytest.raises(InvalidImage) as refused:
        check(png(1001, 1000))
    assert "1,000,000" in str(refused.value)
    assert Image.MAX_IMAGE_PIXELS == LIMIT


@pytest.mark.parametrize("check", [inspect_image, open_upright])
def test_pillows_own_refusal_is_the_setting_too(settings: Any, pillow_limit: None, check: Any) -> None:
    # Over twice the limit Pillow itself raises while opening, before our check.
    settings.MAX_IMAGE_PIXELS = LIMIT
    with pytest.raises(InvalidImage) as refused:
        check(png(1500, 1500))
    assert "1,000,000" in str(refused.value)


@pytest.mark.parametrize("check", [inspect_image, open_upright])
def test_the_setting_not_pillows_default_decides(settings: Any, pillow_limit: None, check: Any) -> None:
    # Pillow's default limit below the setting (as 89.5 MP is below 120 MP) does not refuse.
    Image.MAX_IMAGE_PIXELS = LIMIT
    settings.MAX_IMAGE_PIXELS = 3 * LIMIT
    check(png(1500, 1500))


def test_just_under_the_setting_is_accepted(settings: Any, pillow_limit: None) -> None:
    settings.MAX_IMAGE_PIXELS = LIMIT
    assert inspect_image(png(1000, 1000)).width == 1000
