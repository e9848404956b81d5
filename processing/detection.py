"""Where to look for faces, and how good each face is, for the embedded (dlib) backend.

dlib's HOG detector slides an 80 px window over an image pyramid, so at
upsample 0 it finds faces down to about 75 px; upsample 1 doubles the image
first and finds them down to about 40 px, for four times the pixels. Most event
photos have no face that small, so a photo gets a first pass at upsample 0 and
pays for the upsampled pass only when that pass says small faces are likely:
it found none at all, it found a crowd, or it found a face at the smallest
size it can see (faces further back are smaller still). In a crowd (the
upsampled pass finds CROWD_FACES clear faces or more) its windows scoring just
under the detector's threshold are kept as faces too: among a dozen faces a
borderline window is most often one more, half turned or further back, while
alone in a photo it is as often a pet or a pattern. A face cut by the
frame's edge has a narrow box but is not small: the detector's own width
decides. Nor is a borderline find at the smallest size in a close-up (beside
a face several times larger): such a find is more often a false detection
than the first of a row of distant faces, and the upsampled pass over a large
close-up costs as much as several faces' descriptors. When no rule calls for
the upsampled pass, the first pass's near misses (windows at the smallest size
scoring just under the threshold) get an upsampled look at their surroundings
only: a 60 px face beside larger ones is found for a fraction of the cost.

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
# distant group. On the tuning composites, the photos where the upsampled
# pass found more faces had a clear small find or no face this wide.
CLOSE_UP_FACE_PX = 240
# A window at the smallest size scoring this close under the detector's
# threshold is a near miss, most often a face slightly too small for the first
# pass; the upsampled detector then looks at a square of NEAR_MISS_CONTEXT times
# its width around it. The face lies within the window, so a square twice its
# width holds it with the margin the detector needs, and costs a quarter of one
# four times as wide. On four default tuning composites (bench/detection_rules.py
# --near --near-width), -0.9 with windows under 80 px finds 631 of the 636
# attendees' faces; -1.1 finds 2 more for 23 % more upsampled pixels on the
# throughput bench's photos, and windows under 90 px 1 more for 15 %.
NEAR_MISS_SCORE = -0.9
# The upsampled pass over a crowd keeps its windows down to this score as faces
# (fine_pass). Chosen on the tuning crowd composites (bench/detection_rules.py
# --crowd-score): lower finds a few more faces there, but their plain
# backgrounds cannot show what a lower bar lets in on a real crowd. A near
# miss can go lower because it only says where to look: what the look keeps
# must reach the detector's own threshold.
CROWD_MIN_SCORE = -0.5
NEAR_MISS_CONTEXT = 2
MAX_NEAR_MISSES = 4
# Windows narrower than this can be near misses: the detector's smallest size
# (the next size of its pyramid is a fifth larger).
NEAR_MISS_MAX_PX = 80

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
    """Face boxes in an image array (grey, as the pipeline passes it, or RGB), and the most upsampling used.

    With `adaptive`, `upsample` is the most the detector may use: a first pass
    runs at 0 and the upsampled pass only when `needs_fine_pass` says so. The
    upsampled pass sees the faces the first one saw, and its boxes replace
    them; a borderline find of the first pass that it scores just under the
    threshold (the two passes see slightly different pixels) is kept.
    Otherwise the first pass's near misses (`NEAR_MISS_SCORE`) get an upsampled
    look at their surroundings only (`look_closer`).
    """
    if not adaptive or upsample <= 0:
        return _run(detector, array, upsample), upsample
    boxes, near_misses = _first_pass(detector, array)
    if needs_fine_pass(boxes):
        fine = fine_pass(detector, array, upsample)
        return fine + [box for box in boxes if not _overlaps_any(box, fine)], upsample
    if near_misses:
        found = look_closer(detector, array, near_misses, boxes, upsample)
        return boxes + found, upsample
    return boxes, 0


def _first_pass(detector: Any, array: np.ndarray) -> tuple[list[Box], list[Box]]:
    """Faces found at upsample 0, and the near misses at the detector's smallest size.

    The detector scores every window; a window just under the threshold at
    the smallest size is most often a face slightly too small for it. Asking
    for them costs nothing: the same windows are scored either way.
    """
    boxes = _run(detector, array, 0, NEAR_MISS_SCORE)
    found = [box for box in boxes if box.score >= 0.0]
    near = [box for box in boxes if box.score < 0.0 and _width(box) < NEAR_MISS_MAX_PX]
    return found, near


def fine_pass(detector: Any, array: np.ndarray, upsample: int) -> list[Box]:
    """The upsampled pass over the whole image; in a crowd, with the windows scoring down to CROWD_MIN_SCORE.

    Asking for the borderline windows costs nothing: the same windows are
    scored either way.
    """
    boxes = _run(detector, array, upsample, min(CROWD_MIN_SCORE, 0.0))
    clear = [box for box in boxes if box.score >= 0.0]
    return boxes if len(clear) >= CROWD_FACES else clear


def look_closer(detector: Any, array: np.ndarray, near_misses: list[Box], found: list[Box], upsample: int) -> list[Box]:
    """Faces found by the upsampled detector around each near miss that the first pass did not already find.

    Each near miss gets a square of NEAR_MISS_CONTEXT times its width around
    it, so the look costs a small part of an upsampled pass over the photo.
    More than MAX_NEAR_MISSES of them mean a crowd: the whole photo is looked at.
    """
    if len(near_misses) > MAX_NEAR_MISSES:
        return [box for box in fine_pass(detector, array, upsample) if not _overlaps_any(box, found)]
    height, width = array.shape[:2]
    new: list[Box] = []
    for miss in sorted(near_misses, key=lambda box: -box.score):
        if _overlaps_any(miss, found + new):
            continue
        half = NEAR_MISS_CONTEXT * _width(miss) // 2
        centre_x, centre_y = (miss.left + miss.right) // 2, (miss.top + miss.bottom) // 2
        left, top = max(centre_x - half, 0), max(centre_y - half, 0)
        right, bottom = min(centre_x + half, width), min(centre_y + half, height)
        for box in _run(detector, array[top:bottom, left:right], upsample):
            moved = _moved(box, left, top, width, height)
            if moved is not None and not _overlaps_any(moved, found + new):
                new.append(moved)
    return new


def _moved(box: Box, dx: int, dy: int, width: int, height: int) -> Box | None:
    """A box found in a crop, in the whole image's pixels (`width` x `height`)."""
    rect = type(box.rect)(box.rect.left() + dx, box.rect.top() + dy, box.rect.right() + dx, box.rect.bottom() + dy)
    return _box(rect, box.score, width, height)


def _overlaps_any(box: Box, others: list[Box]) -> bool:
    """Whether the centre of `box` lies in one of `others`, or theirs in it: the same face."""
    centre_x, centre_y = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    for other in others:
        if other.left <= centre_x <= other.right and other.top <= centre_y <= other.bottom:
            return True
        other_x, other_y = (other.left + other.right) / 2, (other.top + other.bottom) / 2
        if box.left <= other_x <= box.right and box.top <= other_y <= box.bottom:
            return True
    return False


def _run(detector: Any, array: np.ndarray, upsample: int, threshold: float = 0.0) -> list[Box]:
    # dlib reads an image as one C-ordered buffer: a crop (a numpy view with the
    # whole photo's row stride) must be copied first, or the detector reads
    # other pixels than the crop's and misses the face it was sent to look at.
    rects, scores, _ = detector.run(np.ascontiguousarray(array), upsample, threshold)
    height, width = array.shape[:2]
    boxes = (_box(rect, float(score), width, height) for rect, score in zip(rects, scores, strict=True))
    return [box for box in boxes if box is not None]


def _box(rect: Any, score: float, width: int, height: int) -> Box | None:
    """A detector rectangle clipped to a `width` x `height` image; None if nothing of it is inside."""
    left, top = max(rect.left(), 0), max(rect.top(), 0)
    right, bottom = min(rect.right(), width - 1), min(rect.bottom(), height - 1)
    if right > left and bottom > top:
        return Box(left, top, right, bottom, score, rect, rect.right() - rect.left())
    return None


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
    # A low detector score alone makes a face doubtful, not useless; a window
    # under the detector's own threshold (a crowd's borderline find) is at
    # best weak evidence, down to a quarter as far under it as a clear face is over it.
    clear = 0.5 + 0.5 * _ramp(score, 0.0, CLEAR_SCORE) - 0.25 * _ramp(-score, 0.0, CLEAR_SCORE)
    return round(min(size, focus) * clear, 3)


def selfie_problem(array: np.ndarray, box: Box) -> str | None:
    """What makes a selfie face unusable, "small" or "blurry", or None if it will do."""
    if min(box.width, box.height) < SELFIE_MIN_FACE_PX:
        return "small"
    if sharpness(array, box) < SELFIE_MIN_SHARPNESS:
        return "blurry"
    return None
