"""How a generated line is drawn: TeX's quotes printed curly, and faded line starts."""

import numpy as np

from lstmbench.data.lines.generate import (
    PRESETS,
    GenerationParams,
    _font,
    line_text,
    printed_form,
    render_text,
    split_words,
)
from lstmbench.data.lines.scan_effects import fade_start


def test_tex_quotes_are_printed_curly_and_single_quotes_stay():
    assert printed_form("a ``b'' c's 'd'") == "a \u201cb\u201d c's 'd'"
    assert printed_form("no quotes") == "no quotes"


def test_a_transcript_with_tex_quotes_is_drawn_as_its_curly_quotes():
    font = _font(GenerationParams().font_paths()[0][0], 32)
    drawn = render_text("a ``b'' c", font, 0.0, 1.0)
    assert np.array_equal(drawn, render_text("a \u201cb\u201d c", font, 0.0, 1.0))
    backquotes = render_text("a ``b`` c", font, 0.0, 1.0)  # drawn as typed
    assert drawn.shape != backquotes.shape or not np.array_equal(drawn, backquotes)


def bars(height=40, width=400, start=30):
    """Vertical strokes two columns wide every six columns from `start` on."""
    ink = np.zeros((height, width), np.float32)
    for x in range(start, width, 6):
        ink[5:-5, x : x + 2] = 1.0
    return ink


def test_a_faded_start_loses_ink_at_the_first_glyphs_only():
    ink = bars()
    for seed in range(20):
        faded = fade_start(ink, np.random.default_rng(seed))
        assert faded.dtype == np.float32 and faded.shape == ink.shape
        assert np.all(faded <= ink) and np.all(faded >= 0.0)
        first = faded[:, 30:32].sum() / ink[:, 30:32].sum()
        assert first < 0.75  # at least 0.4 of the ink lost there, on average
        # Fading reaches at most 1.2 image heights past the first inked column.
        assert np.array_equal(faded[:, 30 + 48 + 1 :], ink[:, 30 + 48 + 1 :])


def test_a_faded_start_is_fixed_by_its_stream_and_leaves_a_blank_image_alone():
    ink = bars()
    one = fade_start(ink, np.random.default_rng(3))
    assert np.array_equal(one, fade_start(ink, np.random.default_rng(3)))
    assert not np.array_equal(one, fade_start(ink, np.random.default_rng(4)))
    blank = np.zeros((40, 100), np.float32)
    assert np.array_equal(fade_start(blank, np.random.default_rng(0)), blank)


def test_full_lines_run_to_uw3s_longest():
    preset = PRESETS["full"]
    stretches = split_words(GenerationParams().corpus_text())["train"]
    rng = np.random.default_rng(0)
    lengths = [len(line_text(rng, stretches, preset)) for _ in range(1000)]
    assert max(lengths) <= preset.max_chars == 100
    assert sum(length > 80 for length in lengths) > 50  # UW3 sample: 5 of 50 over 80
