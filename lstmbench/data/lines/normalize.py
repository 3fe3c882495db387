"""Line images to 48 px: ink polarity, deskew, center-line dewarp and size normalization.

The center-line approach follows ocropy's idea: smooth the ink strongly, take the row of
maximum smoothed ink in every column as the line's center, shift every column so that the
center is straight, and cut a band of a fixed multiple of the ink's mean distance from the
center. Text of any size, font or scan then lands at the same height and baseline.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from lstmbench.data.lines import TARGET_HEIGHT

BAND_RANGE = 4.0  # band half-height, in mean absolute ink distances from the center line
MAX_SKEW_DEGREES = 3.0


class EmptyLineError(ValueError):
    """A line image with no ink (or no contrast) to normalize."""


def to_ink(image: np.ndarray) -> np.ndarray:
    """A grey image of any range -> float32 ink in [0, 1] (1 is ink), whatever its polarity."""
    grey = np.asarray(image, dtype=np.float32)
    low, high = float(grey.min()), float(grey.max())
    if high - low < 1e-6:
        raise EmptyLineError("the image has no contrast (blank line)")
    ink = (grey - low) / (high - low)
    # Text covers a minority of a line image, so the majority value is the paper.
    if np.median(ink) > 0.5:
        ink = 1.0 - ink
    return ink


def estimate_skew(ink: np.ndarray, max_degrees: float = MAX_SKEW_DEGREES) -> float:
    """The text's angle in degrees: the shear whose row profile is sharpest."""
    height, width = ink.shape
    ys, xs = np.nonzero(ink > 0.5)
    # A few words give no reliable angle (capitals and digits have flat profiles at any angle).
    if width < 8 * height or len(ys) < 10:
        return 0.0
    xs = xs - xs.mean()

    def sharpness(degrees: float) -> float:
        rows = np.round(ys + xs * np.tan(np.radians(degrees))).astype(np.int64)
        return float((np.bincount(rows - rows.min()).astype(np.float64) ** 2).sum())

    angles = np.arange(-max_degrees, max_degrees + 1e-9, 0.25)
    scores = [sharpness(a) for a in angles]
    best = int(np.argmax(scores))
    # Keep the image unless a rotation is clearly better: resampling blurs thin strokes.
    return float(angles[best]) if scores[best] > 1.02 * sharpness(0.0) else 0.0


def deskew(ink: np.ndarray) -> np.ndarray:
    """The ink image rotated so that its text runs horizontally."""
    degrees = estimate_skew(ink)
    if abs(degrees) < 0.2:  # below half a pixel over a typical line: not worth resampling
        return ink
    return np.clip(ndimage.rotate(ink, -degrees, reshape=True, order=1, cval=0.0), 0.0, 1.0)


def center_line(ink: np.ndarray) -> np.ndarray:
    """Row of the text's center in every column (int array of the image's width)."""
    height, width = ink.shape
    # The smoothing scale is the line height, so a reduced copy finds the same center faster.
    factor = max(1, height // 12)
    small = ink[: height - height % factor or None, : width - width % factor or None]
    small = small.reshape(small.shape[0] // factor, factor, -1, factor).mean(axis=(1, 3))
    small_height = small.shape[0]
    smooth = ndimage.gaussian_filter(
        small, (0.5 * small_height, 1.0 * small_height), mode="constant"
    )
    # A weak horizontally global term keeps empty columns (between words) on the line.
    smooth += 1e-3 * ndimage.uniform_filter(smooth, (max(1, small_height // 2), smooth.shape[1]))
    rows = np.argmax(smooth, axis=0) * factor + (factor - 1) / 2.0
    rows = ndimage.gaussian_filter1d(rows.astype(np.float64), small_height)
    center = np.interp(np.arange(width), np.arange(len(rows)) * factor + (factor - 1) / 2.0, rows)
    return np.round(center).astype(np.int64)


def _text_band(image: np.ndarray):
    """(ink cropped to the text, its center line, band half-height) of a line image."""
    ink = deskew(to_ink(image))
    mask = ink > 0.5
    if not mask.any():
        raise EmptyLineError("the image has no ink")
    rows, columns = np.nonzero(mask)
    crop = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
    ink, mask = ink[crop], mask[crop]
    center = center_line(ink)
    distances = np.abs(np.arange(ink.shape[0])[:, None] - center[None, :])
    half = int(1 + BAND_RANGE * max(float(distances[mask].mean()), 1.0))
    return ink, center, half


def normalize_line(image: np.ndarray, height: int = TARGET_HEIGHT) -> np.ndarray:
    """A line image -> uint8 (height, width) with ink 255 on 0, deskewed, dewarped, scaled."""
    ink, center, half = _text_band(image)
    width = ink.shape[1]
    padded = np.pad(ink, ((half, half), (0, 0)))
    band_rows = center[None, :] + half + np.arange(-half, half)[:, None]
    band = padded[band_rows, np.arange(width)[None, :]]
    new_width = max(1, int(round(width * height / band.shape[0])))
    scaled = Image.fromarray(band.astype(np.float32), mode="F").resize(
        (new_width, height), Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(scaled) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _area_means(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """`values` shrunk to `size` along `axis`, each new value the mean of the span it covers
    (partly covered values weighted by the part): differences of the running sum, read at
    the spans' fractional edges."""
    count = values.shape[axis]
    running = np.cumsum(values, axis=axis, dtype=np.float64)
    running = np.concatenate([np.zeros_like(np.take(running, [0], axis)), running], axis)
    edges = np.arange(size + 1) * (count / size)
    whole = np.minimum(np.floor(edges).astype(np.int64), count - 1)
    part = (edges - whole).reshape([-1 if a == axis else 1 for a in range(values.ndim)])
    at_edges = np.take(running, whole, axis) + part * np.take(values, whole, axis)
    return np.diff(at_edges, axis=axis) * (size / count)


def scale_to_height(image: np.ndarray, height: int) -> np.ndarray:
    """A normalized line (uint8, ink 255) scaled down to `height` rows, its width in
    proportion, each new pixel the mean of the area it covers (thin strokes fade rather
    than vanish)."""
    if image.shape[0] == height:
        return image
    width = max(1, int(round(image.shape[1] * height / image.shape[0])))
    scaled = _area_means(_area_means(image, height, 0), width, 1)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def ink_kept(image: np.ndarray) -> float:
    """Fraction of a line's ink that the center-line band keeps (1.0: nothing clipped)."""
    ink, center, half = _text_band(image)
    offsets = np.arange(ink.shape[0])[:, None] - center[None, :]
    inside = (offsets >= -half) & (offsets < half)
    return float(ink[inside].sum() / ink.sum())
