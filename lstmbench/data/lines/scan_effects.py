"""Printing and scanning effects for generated lines: augraphy's, and a faded line start.

Applied to the rendered line as a grey page (paper 255) before the scan's geometry and
binarization (generate.py): ink that bleeds into the paper around strokes (printing and
scanning both thicken strokes), streaks of low ink, and the paper's fine noise. One
`strength` in [0, 1] scales how likely and how strong each is. The generator's default, 1,
is the strength whose lines came closest to the real UW3 sample on simple statistics
(scan_stats.py; `lstmbench lines scan-stats`): without the effects generated strokes are
about 0.7 times as wide as real ones.

augraphy draws from Python's and NumPy's global random generators and OpenCV's; each line
seeds all three from its own stream first, so a set stays the same whatever the number of
worker processes. augraphy is imported on first use: only lines made with these effects
need it.

A faded start is hand-written: none of augraphy's effects is tied to where a line begins.
"""

from __future__ import annotations

import random

import numpy as np
from scipy import ndimage

from lstmbench.errors import UserError


def _pipeline(strength: float) -> list:
    """The effects at a strength. augraphy's Letterpress (uneven ink) is left out: on lines
    it left specks of ink that the real scans do not have (scan_stats.py)."""
    try:
        from augraphy import InkBleed, LowInkRandomLines, SubtleNoise
    except ImportError as error:  # OpenCV's wheel needs libGL, absent on some servers
        raise UserError(
            f"augraphy cannot be imported ({error}); run scripts/setup.sh (it installs "
            "augraphy, and libgl1 for OpenCV), or make the lines with --degradation classic"
        ) from None

    s = float(np.clip(strength, 0.0, 1.0))
    return [
        InkBleed(
            intensity_range=(0.4, 0.4 + 0.5 * s),
            kernel_size=(5, 5),
            severity=(0.3, 0.3 + 0.5 * s),
            p=0.5 + 0.5 * s,
        ),
        LowInkRandomLines(count_range=(1, 1 + int(4 * s)), use_consistent_lines=False, p=0.3 * s),
        SubtleNoise(subtle_range=int(5 + 20 * s), p=0.5 + 0.5 * s),
    ]


def print_effects(page: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A grey line image (uint8, paper 255) with printing effects at `strength`, drawn from
    the line's own stream `rng`."""
    effects = _pipeline(strength)
    import cv2  # importable once augraphy is

    seed = int(rng.integers(2**31 - 1))
    random.seed(seed)
    np.random.seed(seed)
    cv2.setRNGSeed(seed)
    image = np.ascontiguousarray(page, dtype=np.uint8)
    for effect in effects:
        changed = effect(image)  # None where the effect's chance said not to apply it
        if changed is not None:
            image = changed
    return np.asarray(image, dtype=np.uint8)


def fade_start(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink (float32 in [0, 1], 1 is ink) whose first glyphs are faded and broken.

    The ink's strength climbs from a low point at the first inked column to full strength
    over one to four glyphs (half an em to two), in uneven patches, so that the scan's threshold
    (generate.degrade) breaks strokes where they are faint, as a page's left margin looks
    when the light or the toner falls off there."""
    height, width = ink.shape
    inked = np.flatnonzero(ink.max(axis=0) > 0.5)
    if not len(inked):
        return ink
    span = rng.uniform(0.3, 1.2) * height  # the image is about 1.7 ems high
    depth = rng.uniform(0.4, 0.9)  # ink lost at the first inked column
    loss = depth * np.clip(1.0 - (np.arange(width) - inked[0]) / span, 0.0, 1.0)
    patches = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.5)
    patches /= max(float(patches.std()), 1e-6)
    strength = np.clip(1.0 - loss[None, :] * (1.0 + 0.5 * patches), 0.0, 1.0)
    return (ink * strength).astype(np.float32)
