"""Where to look for faces, and how good each face is, for the embedded (dlib) backend.

dlib's HOG detector slides an 80 px window over an image pyramid, so at
upsample 0 it finds faces down to about 75 px; upsample 1 doubles the image
first and finds them down to about 40 px, for four times the pixels. Most event
photos have no face that small, so a photo gets a first pass at upsample 0 and
pays for the upsampled pass only when that pass says small faces are likely:
it found none at all, it found a crowd, or it found a face at the smallest
size it can see (faces further back are smaller still). A face cut by the
frame's edge has a narrow box but is not small: the detector's own width
decides. Nor is a borderline find at the smallest size in a close-up (beside
a face several times larger): such a find is more often a false detection
than the first of a row of distant faces, and the upsampled pass over a large
close-up costs as much as several faces' descriptors.

For event photos the detector runs on the grey image: HOG takes, at each
pixel, the gradient of the colour channel that changes most, and on event
photos the grey gradient finds nearly the same faces for less work (one channel
instead of three). Landmarks and descriptors
still read the colour image.

Quality: a face's descriptor is only as good as the pixels it came from. A
face gets a quality in 0..1 from its size at analysis size, its sharpness
(variance of the Laplacian relative to the crop's own contrast, so lighting
does not count) and the detector's score. Matching asks stronger evidence of a
weak face, and does not match an unusable one (processing.matching).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# The detector's smallest box at upsample 0 is 73-80 px; a face found at that
# size means the photo is shot from far enough that others may be smaller.
SMALL_FACE_PX = 80
# A photo with this many faces found at upsample 0 is a group shot, where
# people further back are smaller than the ones the first pass found.
CROWD_FACES = 8
# A photo with a face this wide at analysis size is a close-up: a borderline
# (score below CLEAR_SCORE) find at the smallest size does not make it a
# distant group. On the tuning composites, every photo where the upsampled
# pass found more faces had a clear small find or no face this wide.
CLOSE_UP_FACE_PX = 240

# Size at analysis size from which a face counts as fully resolved, and below
# which it carries no usable detail.
FULL_SIZE_PX = 48
MIN_SIZE_PX = 20
# Sharpness (Laplacian variance over crop variance) of a face in focus, and of
# one blurred past recognition; measured on LFW faces blurred by known amounts.
SHARP = 0.05
BLURRED = 0.008
# Side to which a large face is reduced before its sharpness is measured.
SHARPNESS_SIDE = 64
# HOG scores: a clear frontal face scores 0.5 and more; a borderline find, 0.
CLEAR_SCORE = 0.5

# A selfie face must be at least this wide (pixels of the selfie as analysed,
# longest side 1024) and at least this sharp.
SELFIE_MIN_FACE_PX = 60
SELFIE_MIN_SHARPNESS = 0.012


@dataclass(frozen=True)
class Box:
    """A detector box clipped to the image, with the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float
    rect: Any  # the dlib rectangle, for the landmark model
    # The detector's own width before clipping: a face cut by the frame's edge is not a small face.
    detected_width: int = 0

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def needs_fine_pass(boxes: list[Box]) -> bool:
    """Whether the first (upsample 0) pass suggests faces too small for it to see."""
    if not boxes or len(boxes) >= CROWD_FACES:
        return True
    small = [box for box in boxes if _width(box) < SMALL_FACE_PX]
    if not small:
        return False
    return max(box.score for box in small) >= CLEAR_SCORE or max(_width(box) for box in boxes) < CLOSE_UP_FACE_PX


def _width(box: Box) -> int:
    """The detector's own width, which a face cut by the frame's edge keeps."""
    return box.detected_width or box.width


def find_boxes(detector: Any, array: np.ndarray, upsample: int, *, adaptive: bool = True) -> tuple[list[Box], int]:
    """Face boxes in an image array (grey, as the pipeline passes it, or RGB), and the upsampling they were found at.

    With `adaptive`, `upsample` is the most the detector may use: a first pass
    runs at 0 and the upsampled pass only when `needs_fine_pass` says so. The
    upsampled pass sees every face the first one saw, so its boxes replace them.
    """
    first = 0 if adaptive else upsample
    boxes = _run(detector, array, first)
    if adaptive and upsample > 0 and needs_fine_pass(boxes):
        return _run(detector, array, upsample), upsample
    return boxes, first


def _run(detector: Any, array: np.ndarray, upsample: int) -> list[Box]:
    rects, scores, _ = detector.run(array, upsample, 0.0)
    height, width = array.shape[:2]
    boxes = []
    for rect, score in zip(rects, scores, strict=True):
        left, top = max(rect.left(), 0), max(rect.top(), 0)
        right, bottom = min(rect.right(), width - 1), min(rect.bottom(), height - 1)
        if right > left and bottom > top:
            boxes.append(Box(left, top, right, bottom, float(score), rect, rect.right() - rect.left()))
    return boxes


def sharpness(array: np.ndarray, box: Box) -> float:
    """Variance of the Laplacian of the face's grey crop over the crop's variance (`array`: grey or RGB).

    Faces larger than 64 px are reduced to it first, so that a large
    face's fine skin texture and sensor noise do not count as focus.
    """
    crop = array[box.top : box.bottom, box.left : box.right]
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return 0.0
    grey = crop.astype(np.float32).mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)
    if max(grey.shape) > SHARPNESS_SIDE:
        grey = _reduce(grey, SHARPNESS_SIDE)
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    contrast = float(grey.var())
    if contrast < 1.0:
        return 0.0
    return float(laplacian.var()) / contrast


def _reduce(grey: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image  # Pillow is light, but only this path of the module needs it

    scale = side / max(grey.shape)
    size = (max(3, round(grey.shape[1] * scale)), max(3, round(grey.shape[0] * scale)))
    return np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BOX), np.float32)


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def face_quality(width: int, height: int, sharp: float, score: float) -> float:
    """Quality in 0..1: the weakest of size, sharpness and detector score decides."""
    size = _ramp(min(width, height), MIN_SIZE_PX, FULL_SIZE_PX)
    focus = _ramp(sharp, BLURRED, SHARP)
    # A low detector score alone makes a face doubtful, not useless.
    clear = 0.5 + 0.5 * _ramp(score, 0.0, CLEAR_SCORE)
    return round(min(size, focus) * clear, 3)


def selfie_problem(array: np.ndarray, box: Box) -> str | None:
    """What makes a selfie face unusable, "small" or "blurry", or None if it will do."""
    if min(box.width, box.height) < SELFIE_MIN_FACE_PX:
        return "small"
    if sharpness(array, box) < SELFIE_MIN_SHARPNESS:
        return "blurry"
    return None
