"""The text of generated lines: report prose with references and formulas, hyphenated line
ends, fixed by its seed, and a character set that covers what UW3 transcripts use."""

import re

import numpy as np
from conftest import shared_data

from lstmbench.data.lines.codec import normalize_text
from lstmbench.data.lines.corpus import ALPHABET, builtin_corpus
from lstmbench.data.lines.generate import PRESETS, GenerationParams, line_text, split_words
from lstmbench.data.lines.hyphenate import break_points, hyphenate
from lstmbench.data.lines.report_text import report_paragraphs


def uw3_characters() -> set[str]:
    texts = sorted(shared_data("uw3-sample").glob("*.gt.txt"))
    assert len(texts) == 50
    return set("".join(normalize_text(p.read_text(encoding="utf-8")) for p in texts))


def sample_lines(count: int) -> list[str]:
    words = split_words(builtin_corpus())["train"]
    preset = PRESETS["small"]
    return [line_text(np.random.default_rng([0, 0, i]), words, preset) for i in range(count)]


def test_every_uw3_character_can_be_produced():
    uw3 = uw3_characters()
    assert uw3 <= ALPHABET
    produced = set("".join(sample_lines(3000)))
    assert uw3 - produced == set(), "UW3 characters no generated line holds"


def test_every_character_of_the_alphabet_is_in_the_built_in_text():
    assert set(builtin_corpus()) - {"\n"} == ALPHABET
    assert set(GenerationParams().characters()) == ALPHABET


def test_the_text_reads_like_a_technical_report():
    text = builtin_corpus()
    for pattern in (
        r"\[\d+\]",
        r"\[\d+, \d+\]",
        r"\[[A-Z][a-z]+ et al\. \d{4}\]",
        r"Fig\. \d+",
        r"Sec\. \d\.\d",
        r"pp\. \d+-\d+",
        r"O\([a-zA-Z]\^\d\)",
        r"[a-zA-Z] <= \d+",
        r"``[a-z]+''",
    ):
        assert len(re.findall(pattern, text)) >= 20, pattern
    assert len(text.split()) > 50_000
    assert " a open" not in text and " a algorithm" not in text


def test_the_text_is_fixed_by_its_seed():
    assert report_paragraphs(50, 7) == report_paragraphs(50, 7)
    assert report_paragraphs(50, 7) != report_paragraphs(50, 8)


def test_hyphenation_breaks_words_between_syllables():
    assert break_points("algorithms") and break_points("cardinality")
    assert break_points("tree") == [] and break_points("[12]") == []
    rng = np.random.default_rng(0)
    for word in ("algorithms,", "matching", "structures.", "efficiently"):
        head, tail = hyphenate(word, rng)
        assert head.endswith("-") and head[:-1] + tail == word
        assert len(head) - 1 >= 3 and len(tail.rstrip(".,")) >= 3


def test_some_lines_end_or_begin_with_a_broken_word():
    lines = sample_lines(2000)
    ends = sum(re.search(r"[a-z]-$", line) is not None for line in lines)
    assert 0.07 < ends / len(lines) < 0.2  # UW3: 6 of the 50 sample lines
    for line in lines:
        assert PRESETS["small"].min_chars <= len(line) <= PRESETS["small"].max_chars
