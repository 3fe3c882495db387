"""The codec: characters <-> class numbers, taken from training transcripts (class 0 is blank)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from lstmbench.data.base import BLANK
from lstmbench.errors import UserError

# A reference character the codec does not know: it can never be decoded, so it always counts
# as an error, and the line still gets scored.
UNKNOWN = -1


def normalize_text(text: str) -> str:
    """A transcript in Unicode NFC, without the trailing newline and surrounding spaces."""
    return unicodedata.normalize("NFC", text).strip()


class Codec:
    """A fixed, ordered character set; class k (k >= 1) is `characters[k - 1]`."""

    def __init__(self, characters: Iterable[str]):
        self.characters = list(characters)
        if len(set(self.characters)) != len(self.characters):
            raise UserError("codec characters must be distinct")
        if any(len(c) != 1 for c in self.characters):
            raise UserError("codec entries must be single characters")
        self._index = {c: k for k, c in enumerate(self.characters, start=1)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], characters: str = "") -> Codec:
        """The codec of every character in the given (training) transcripts and in
        `characters` (what a text source can produce, seen in these lines or not), sorted."""
        seen: set[str] = set(unicodedata.normalize("NFC", characters))
        for text in texts:
            seen.update(normalize_text(text))
        return cls(sorted(seen))

    @property
    def n_classes(self) -> int:
        """Number of output classes, including the blank."""
        return len(self.characters) + 1

    def encode(self, text: str) -> list[int]:
        """Class numbers of a transcript; unknown characters become UNKNOWN (-1)."""
        return [self._index.get(c, UNKNOWN) for c in normalize_text(text)]

    def unknown(self, text: str) -> set[str]:
        """The characters of a transcript that the codec cannot represent."""
        return {c for c in normalize_text(text) if c not in self._index}

    def decode(self, labels: Iterable[int]) -> str:
        """The text of a class sequence (blanks dropped; UNKNOWN shown as U+FFFD)."""
        out = []
        for k in labels:
            if k == BLANK:
                continue
            out.append(self.characters[k - 1] if 0 < k <= len(self.characters) else "\ufffd")
        return "".join(out)

    def to_dict(self) -> dict:
        """JSON-ready form, saved with a trained model."""
        return {"characters": "".join(self.characters)}

    @classmethod
    def from_dict(cls, values: dict) -> Codec:
        """Rebuild a saved codec."""
        try:
            return cls(list(values["characters"]))
        except (KeyError, TypeError):
            raise UserError("saved codec is missing or corrupt; retrain the model") from None
