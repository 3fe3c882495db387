"""How a line model reads the first characters of lines: the errors on a line's first three
characters of real lines as they are and with blank columns put in front of them, and the
generated test lines whose first character it gets wrong with the first columns of their
48 px images blanked (the left of the first glyph cut away).

    .venv/bin/python benchmarks/line_starts.py RUN_DIR --real ../shared/data/uw3-sample \
        [--dataset uw3like:full --lines 300]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from lstmbench.data import load_dataset
from lstmbench.data.lines.dataset import LineDataset, load_line_set
from lstmbench.training.recognize import load_line_model, score_lines

START = 3  # characters counted as a line's start
PADS = (0, 2, 4, 8, 16)
CUTS = (0, 2, 4, 6, 8)


def start_errors(references: list[str], hypotheses: list[str]) -> tuple[int, int, int]:
    """(edit operations in all, on a line's first START characters, lines whose first
    character is wrong)."""
    total = start = first = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        operations = Levenshtein.editops(reference, hypothesis)
        total += len(operations)
        start += sum(op.src_pos < START for op in operations)
        first += any(op.src_pos == 0 for op in operations)
    return total, start, first


def read(net, images, texts, codec) -> tuple[float, tuple[int, int, int]]:
    cer, hypotheses, _ = score_lines(net, LineDataset(images, texts, codec))
    return cer, start_errors(texts, hypotheses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a run directory or its model.pt (trained on lines)")
    parser.add_argument("--real", required=True, help="real line images (a directory)")
    parser.add_argument("--dataset", default="uw3like:full", help="generated test lines")
    parser.add_argument("--lines", type=int, default=300, help="generated test lines read")
    args = parser.parse_args()
    _, net, codec = load_line_model(args.model)
    real = load_line_set(Path(args.real))
    print(f"real lines ({len(real)}), blank columns in front: CER, errors, on the first {START}")
    for pad in PADS:
        images = [np.pad(image, ((0, 0), (pad, 0))) for image in real.images]
        cer, (total, start, _) = read(net, images, real.texts, codec)
        print(f"  {pad:2d} columns: CER {cer:6.2%}  errors {total:4d}  first {START}: {start}")
    _, test = load_dataset(args.dataset, None, 0, 0)
    count = min(args.lines, len(test))
    print(
        f"generated test lines ({count}), first columns blanked: CER, errors, on the first "
        f"{START}, lines whose first character is wrong"
    )
    for cut in CUTS:
        images = [image.copy() for image in test.images[:count]]
        for image in images:
            image[:, :cut] = 0
        cer, (total, start, first) = read(net, images, test.texts[:count], test.codec)
        print(
            f"  {cut:2d} columns: CER {cer:6.2%}  errors {total:4d}  first {START}: {start:4d}  "
            f"first character wrong {first:4d}"
        )


if __name__ == "__main__":
    main()
