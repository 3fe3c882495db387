"""Breaking a word at a line end, as typeset text does: `algo-` on one line, `rithms` on the
next. A rule of thumb, not a dictionary: it splits between a vowel and the consonant that
begins the next syllable, leaving at least three letters on each side."""

from __future__ import annotations

import numpy as np

VOWELS = set("aeiouyAEIOUY")
MIN_PART = 3
TRAILING = ".,;:)!?'\""


def break_points(word: str) -> list[int]:
    """Positions k where word[:k] + '-' / word[k:] is a plausible hyphenation."""
    points = []
    for k in range(MIN_PART, len(word) - MIN_PART + 1):
        before, after = word[k - 1], word[k]
        tail = word[k:].rstrip(TRAILING)  # "rithms," keeps its comma on the next line
        if not (before.isalpha() and tail.isalpha() and len(tail) >= MIN_PART):
            continue
        follows_vowel = before in VOWELS and after not in VOWELS
        between_consonants = (
            before not in VOWELS and after not in VOWELS and word[k - 2] in VOWELS
        )  # "sys-tem", "mat-ching"
        if follows_vowel or between_consonants:
            points.append(k)
    return points


def hyphenate(word: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """(head with its hyphen, tail) of a word broken at a random break point, or None when
    the word cannot be broken (too short, or not a plain word)."""
    points = break_points(word)
    if not points:
        return None
    k = points[int(rng.integers(len(points)))]
    return word[:k] + "-", word[k:]
