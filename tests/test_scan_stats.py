"""Scan statistics against slow, obvious references; augraphy's printing effects: seeded per
line, stronger with strength; `lines scan-stats` on the real sample."""

import random

import numpy as np
import pytest
from conftest import shared_data

from lstmbench.cli.main import main
from lstmbench.data.lines.generate import GenerationParams, sample_lines
from lstmbench.data.lines.scan_effects import print_effects
from lstmbench.data.lines.scan_stats import (
    STATISTICS,
    comparison_table,
    distance,
    line_statistics,
    summarize,
)
from lstmbench.errors import UserError


def slow_runs(solid: np.ndarray) -> list[int]:
    """Lengths of horizontal runs of True, walking every row pixel by pixel."""
    lengths = []
    for row in solid:
        run = 0
        for value in list(row) + [False]:
            if value:
                run += 1
            elif run:
                lengths.append(run)
                run = 0
    return lengths


def slow_statistics(image: np.ndarray) -> dict[str, float]:
    """Each statistic by its definition, pixel by pixel."""
    ink = image.astype(float) / 255.0
    solid = ink > 0.5
    height, width = solid.shape
    count = int(solid.sum())
    edge = 0
    for y in range(height):
        for x in range(width):
            if solid[y, x]:
                around = [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                if any(
                    not (0 <= v < height and 0 <= u < width) or not solid[v, u] for v, u in around
                ):
                    edge += 1
    # components by flood fill, 4-connected
    seen = np.zeros_like(solid)
    sizes = []
    for y in range(height):
        for x in range(width):
            if solid[y, x] and not seen[y, x]:
                stack, size = [(y, x)], 0
                seen[y, x] = True
                while stack:
                    v, u = stack.pop()
                    size += 1
                    for b, a in ((v - 1, u), (v + 1, u), (v, u - 1), (v, u + 1)):
                        if 0 <= b < height and 0 <= a < width and solid[b, a] and not seen[b, a]:
                            seen[b, a] = True
                            stack.append((b, a))
                sizes.append(size)
    runs = slow_runs(solid)
    stroke = float(np.mean(runs)) if runs else 0.0
    return {
        "ink": count / solid.size,
        "stroke": stroke,
        "roughness": edge / count * stroke,
        "specks": sum(s <= 3 for s in sizes) * 100.0 / width,
        "grey": float(np.mean((ink > 0.2) & (ink < 0.8))),
    }


def test_statistics_match_their_definitions_on_random_images():
    rng = np.random.default_rng(0)
    images = []
    for _ in range(5):
        image = np.zeros((48, 120), dtype=np.uint8)
        for _ in range(8):  # strokes of a few widths, specks, grey pixels
            y, x = rng.integers(0, 40), rng.integers(0, 110)
            image[y : y + rng.integers(2, 9), x : x + rng.integers(1, 6)] = 255
        image[rng.integers(0, 48, 20), rng.integers(0, 120, 20)] = 255
        image[rng.integers(0, 48, 30), rng.integers(0, 120, 30)] = 128
        fast, slow = line_statistics(image), slow_statistics(image)
        assert fast == pytest.approx(slow)
        images.append(image)
    medians = {n: np.median([slow_statistics(i)[n] for i in images]) for n in STATISTICS}
    assert summarize(images) == pytest.approx(medians)


def test_a_clean_bar_has_its_width_as_stroke_and_smooth_edges():
    bar = np.zeros((48, 200), dtype=np.uint8)
    bar[4:44, 50:54] = 255  # one vertical bar 4 wide, 40 high
    stats = line_statistics(bar)
    assert stats["stroke"] == 4 and stats["ink"] == pytest.approx(160 / (48 * 200))
    # edges: the two long sides (40 each) and the ends' inner pixels (2 each)
    assert stats["roughness"] == pytest.approx((80 + 4) / 160 * 4)
    assert stats["specks"] == 0 and stats["grey"] == 0


def test_distance_is_zero_to_itself_and_grows_with_the_ratio():
    base = {name: 1.0 for name in STATISTICS}
    assert distance(base, base) == 0
    double = {**base, "stroke": 2.0}
    assert distance(double, base) == pytest.approx(np.log(2))
    assert distance({**base, "specks": 0.0}, base) == pytest.approx(1.0)
    table = comparison_table({"real": base, "gen": double}, "real")
    assert "| gen |" in table and "(x2.00)" in table


def page_with_text(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    page = np.full((60, 400), 255, dtype=np.uint8)
    for x in range(10, 390, 14):  # letter-like blocks
        page[15 : 15 + rng.integers(20, 35), x : x + rng.integers(3, 9)] = 0
    return page


def test_printing_effects_are_seeded_by_the_line_not_the_process():
    page = page_with_text()
    first = print_effects(page, np.random.default_rng([0, 1, 2]), 1.0)
    random.seed(99)
    np.random.seed(99)  # global state left by other work must not matter
    np.random.random(1000)
    again = print_effects(page, np.random.default_rng([0, 1, 2]), 1.0)
    other = print_effects(page, np.random.default_rng([0, 1, 3]), 1.0)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.shape == page.shape and first.dtype == np.uint8


def test_stronger_effects_change_more_pixels():
    page = page_with_text()

    def changed(strength: float) -> float:
        return np.mean(
            [
                np.mean(
                    np.abs(
                        print_effects(page, np.random.default_rng([i]), strength).astype(int) - page
                    )
                )
                for i in range(6)
            ]
        )

    assert changed(0.0) < changed(1.0)


def test_generated_lines_differ_by_degradation_and_strengths_are_checked():
    classic = sample_lines(GenerationParams("tiny", degradation="classic"), 3)
    printed = sample_lines(GenerationParams("tiny", degradation="augraphy", strength=1.0), 3)
    assert len(classic) == len(printed) == 3
    assert any(
        a.shape != b.shape or not np.array_equal(a, b)
        for a, b in zip(classic, printed, strict=True)
    )
    assert GenerationParams(degradation="classic").key() != GenerationParams().key()
    with pytest.raises(UserError, match="unknown degradation 'ink'"):
        GenerationParams(degradation="ink").check()
    with pytest.raises(UserError, match="within 0 and 1"):
        GenerationParams(strength=2.0).check()


def test_scan_stats_command_compares_real_and_generated_lines(capsys):
    real = shared_data("uw3-sample")
    assert (
        main(["lines", "scan-stats", "--real", str(real), "--lines", "4", "--strength", "0.5"]) == 0
    )
    out = capsys.readouterr().out
    assert "| real |" in out and "| classic (" in out and "| augraphy 0.5 (" in out
    assert "closest to the real lines" in out
    assert main(["lines", "scan-stats", "--real", str(real), "--lines", "0"]) == 2
    assert "--lines must be at least 1" in capsys.readouterr().err
