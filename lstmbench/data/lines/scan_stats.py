"""Simple statistics of line images: how generated lines' degradation compares with real scans.

Each is measured on the normalized 48 px image (normalize.py; 255 is ink), so scans of any
resolution and lines drawn at any font size are measured on one scale:
- ink: the share of pixels that are ink (above one half);
- stroke: the mean length of horizontal runs of ink, in pixels (stroke width; a mean, not a
  median, since runs are whole pixels and a median moves in steps of one);
- roughness: ink pixels with a paper neighbour (4-connected) per ink pixel, times the stroke
  width: about 2 for clean strokes of any width, higher where edges are ragged;
- specks: connected ink components of at most SPECK_PIXELS pixels per 100 columns (dust,
  toner, noise left after binarization);
- grey: the share of pixels between paper and ink (0.2 to 0.8): the normalization's
  smoothing of edges, plus any grey noise a line keeps.

A set of lines is summarized by the median of each statistic over its lines; two sets are
compared by each median's ratio, generated over real.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SPECK_PIXELS = 3
STATISTICS = ("ink", "stroke", "roughness", "specks", "grey")


def line_statistics(image: np.ndarray) -> dict[str, float]:
    """The statistics of one normalized line image (uint8, 255 is ink)."""
    ink = np.asarray(image, dtype=np.float32) / 255.0
    solid = ink > 0.5
    count = int(solid.sum())
    stroke = _mean_run(solid)
    padded = np.pad(solid, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & solid
    edge = count - int(inner.sum())
    labels, found = ndimage.label(solid)
    sizes = np.bincount(labels.ravel())[1:] if found else np.zeros(0, dtype=int)
    return {
        "ink": count / solid.size,
        "stroke": stroke,
        "roughness": edge / count * stroke if count else float("nan"),
        "specks": float((sizes <= SPECK_PIXELS).sum()) * 100.0 / solid.shape[1],
        "grey": float(((ink > 0.2) & (ink < 0.8)).mean()),
    }


def _mean_run(solid: np.ndarray) -> float:
    """Mean length of the horizontal runs of True in a boolean image (0 if none)."""
    padded = np.pad(solid, ((0, 0), (1, 1))).astype(np.int8)
    steps = np.diff(padded, axis=1)
    starts, ends = np.nonzero(steps == 1), np.nonzero(steps == -1)
    lengths = ends[1] - starts[1]  # row-major order pairs each run's start with its end
    return float(lengths.mean()) if lengths.size else 0.0


def summarize(images: list[np.ndarray]) -> dict[str, float]:
    """Median of each statistic over a set of normalized line images."""
    if not images:
        raise ValueError("no line images to summarize")
    per_line = [line_statistics(image) for image in images]
    return {name: float(np.nanmedian([s[name] for s in per_line])) for name in STATISTICS}


def distance(summary: dict[str, float], reference: dict[str, float]) -> float:
    """How far a set's statistics lie from a reference set's: the sum over the statistics
    of |log ratio| (a statistic that is 0 in either set counts by how far the other is
    from 0, on the scale of 1)."""
    total = 0.0
    for name in STATISTICS:
        a, b = summary[name], reference[name]
        total += abs(np.log(a / b)) if a > 0 and b > 0 else abs(a - b)
    return float(total)


def comparison_table(sets: dict[str, dict[str, float]], reference: str) -> str:
    """A markdown table of set summaries, each statistic also as a ratio to `reference`."""
    header = "| set | " + " | ".join(STATISTICS) + " |"
    lines = [header, "|" + " --- |" * (len(STATISTICS) + 1)]
    base = sets[reference]
    for name, values in sets.items():
        cells = []
        for stat in STATISTICS:
            text = f"{values[stat]:.3g}"
            if name != reference and base[stat]:
                text += f" (x{values[stat] / base[stat]:.2f})"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
