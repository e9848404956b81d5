"""Image decoding and validation shared by uploads and the processing pipeline.

The MAX_IMAGE_PIXELS setting is Pillow's own limit (`Image.MAX_IMAGE_PIXELS`):
it is applied before every decode here, so the number a refusal cites is the
one that refused the image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

import pillow_heif
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from gallery.formats import ACCEPTED_FORMATS, accepted_names

# Pillow reads HEIC/HEIF (iPhone photos) through pillow-heif's opener, registered
# once here: every image of uploads, the pipeline and selfies is opened by this module.
# libheif applies the rotation stored in the file while decoding, so the EXIF
# orientation pillow-heif leaves is already 1.
pillow_heif.register_heif_opener()


class InvalidImage(ValueError):
    """The bytes are not an image we accept; the message says why, for the client."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def inspect_image(fileobj: IO[bytes]) -> ImageInfo:
    """Check by content that `fileobj` is a whole, accepted, not-too-large image."""
    max_pixels = apply_pixel_limit()
    fileobj.seek(0)
    head = fileobj.read(16)
    if not head:
        raise InvalidImage(_("The file is empty"))
    fileobj.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fileobj) as image:
                image_format = image.format or ""
                width, height = image.size
                if image_format not in ACCEPTED_FORMATS:
                    raise InvalidImage(
                        _("Unsupported image type %(format)s; send %(accepted)s")
                        % {"format": image_format or _("unknown"), "accepted": accepted_names()}
                    )
                _check_pixels(width, height)
                # verify() checks PNG and WebP chunks but does not decode JPEG or
                # HEIF data; a whole JPEG ends with the end-of-image marker, a
                # whole HEIF holds all the boxes it declares.
                image.verify()
                if image_format == "JPEG" and not _has_jpeg_end(fileobj):
                    raise InvalidImage(_("The image is damaged or truncated (it ends before the image does)"))
                if image_format == "HEIF" and not _has_whole_heif_boxes(fileobj):
                    raise InvalidImage(_("The image is damaged or truncated (it ends before the image does)"))
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(too_many_pixels(max_pixels)) from None
    except UnidentifiedImageError:
        raise InvalidImage(
            _("The file is not an image (%(accepted)s expected)") % {"accepted": accepted_names()}
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(_("The image is damaged or truncated (%(reason)s)") % {"reason": exc}) from None
    finally:
        fileobj.seek(0)
    return ImageInfo(format=image_format, width=width, height=height)


def _has_jpeg_end(fileobj: IO[bytes]) -> bool:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(max(0, size - 1024))
    # Some cameras pad the file after the marker.
    return fileobj.read().rstrip(b"\x00").endswith(b"\xff\xd9")


def _has_whole_heif_boxes(fileobj: IO[bytes]) -> bool:
    """Whether a HEIF file's top-level boxes all fit in it, the image data (`mdat`) among them.

    Decoding would prove it too, at about a second per 12-megapixel photo in
    the upload request; a cut file is caught by the box sizes alone (ISO/IEC
    14496-12: a 32-bit size, 1 for a 64-bit size after the type, 0 for "to the
    end of the file").
    """
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    offset = 0
    seen_image_data = False
    while size - offset >= 8:
        fileobj.seek(offset)
        header = fileobj.read(16)
        box_size = int.from_bytes(header[:4], "big")
        seen_image_data = seen_image_data or header[4:8] == b"mdat"
        if box_size == 0:
            return seen_image_data
        if box_size == 1:
            if len(header) < 16:
                return False
            box_size = int.from_bytes(header[8:16], "big")
        if box_size < 8:
            return False
        offset += box_size
    return offset <= size and seen_image_data


def apply_pixel_limit() -> int:
    """Make the MAX_IMAGE_PIXELS setting Pillow's limit; returns it.

    Set before each decode rather than once, so that the setting is the limit
    even when it changes (tests override it). Pillow refuses above the limit
    with a warning (an error here) and above twice the limit with an error.
    """
    limit: int = settings.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    return limit


def too_many_pixels(limit: int, width: int | None = None, height: int | None = None) -> str:
    """The refusal of an image over `limit` pixels, for the client."""
    if width is not None and height is not None:
        return _("The image has too many pixels (%(width)dx%(height)d, limit %(limit)s)") % {
            "width": width,
            "height": height,
            "limit": f"{limit:,}",
        }
    return _("The image has too many pixels (limit %(limit)s)") % {"limit": f"{limit:,}"}


def _check_pixels(width: int, height: int) -> None:
    limit: int = settings.MAX_IMAGE_PIXELS
    if width * height > limit:
        raise InvalidImage(too_many_pixels(limit, width, height))
    if width < 1 or height < 1:
        raise InvalidImage(_("The image has no pixels"))


def open_upright(
    fileobj: IO[bytes], max_side: int | None = None, *, max_full_decode_pixels: int | None = None
) -> Image.Image:
    """Decode an image as upright RGB, reduced so its longest side is at most `max_side`.

    JPEG decoding uses `draft`, which scales in the decoder and avoids building
    the full-size bitmap of a 24-megapixel photo. Other formats are decoded at
    full size; with `max_full_decode_pixels` (selfies, in the web process) such
    an image above that many pixels is refused from its header, before it is
    decoded. The image is reduced before it is rotated and converted, so that
    at most one full-size bitmap exists at a time.
    """
    max_pixels = apply_pixel_limit()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(fileobj)
            _check_pixels(*image.size)
            if max_full_decode_pixels is not None and image.format != "JPEG":
                _check_full_decode(image, max_full_decode_pixels)
            if max_side and image.format == "JPEG":
                image.draft("RGB", _draft_size(image, max_side))
            if max_side and max(image.size) > max_side:
                if image.mode in ("1", "P"):
                    # Resizing these modes ignores the filter: shrink them to twice
                    # the size with nearest pixels, so that the RGB copy is small,
                    # then filter that copy.
                    image.thumbnail((2 * max_side, 2 * max_side), Image.Resampling.NEAREST)
                    image = image.convert("RGB")
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            upright = ImageOps.exif_transpose(image)
            upright = upright.convert("RGB") if upright.mode != "RGB" else upright
            upright.load()
            return upright
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(too_many_pixels(max_pixels)) from None
    except UnidentifiedImageError:
        raise InvalidImage(_("The file is not an image")) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(_("The image is damaged or truncated (%(reason)s)") % {"reason": exc}) from None


def _check_full_decode(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidImage(
            _(
                "The image has too many pixels (%(width)dx%(height)d) to be read as %(format)s: "
                "send a JPEG, or an image of at most %(megapixels)d megapixels"
            )
            % {"width": width, "height": height, "format": image.format, "megapixels": max_pixels // 1_000_000}
        )


def fitted_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size of a `width` x `height` image reduced so its longest side is at most `max_side` (never enlarged)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _draft_size(image: Image.Image, max_side: int) -> tuple[int, int]:
    # draft() picks the smallest decoder scale that is still at least this size.
    return fitted_size(image.width, image.height, max_side)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """`image` reduced so its longest side is at most `max_side`; `image` itself when it fits.

    Shrinks by the whole factor with a box filter (an area average), the same
    factor on both axes, then bicubic for what remains (less than 2x, where it
    looks the same as Lanczos for less work), if anything. Pillow's own
    reducing_gap picks a factor per axis, which leaves a filter pass over the
    larger image for the rounding of the other.
    """
    if max(image.size) <= max_side:
        return image
    size = fitted_size(image.width, image.height, max_side)
    factor = max(image.size) // max_side
    fitted = image.reduce(factor) if factor >= 2 else image
    return fitted if fitted.size == size else fitted.resize(size, Image.Resampling.BICUBIC)


def jpeg_bytes(image: Image.Image, max_side: int, quality: int = 85, *, optimize: bool = True) -> bytes:
    """A JPEG copy of `image` whose longest side is at most `max_side` (`image` is left as it is).

    Baseline rather than progressive: progressive encoding costs twice the
    time of the whole rendition step for files about 3 % smaller. `optimize`
    (Huffman tables fitted to the image) is worth it for thumbnails, which a
    gallery page loads by the dozen; on a web-size copy it more than doubles
    the encoding time for a file about 2 % smaller (bench/processing_throughput.py
    prints both), so the pipeline turns it off there.
    """
    buffer = io.BytesIO()
    fit_within(image, max_side).save(buffer, "JPEG", quality=quality, optimize=optimize)
    return buffer.getvalue()
