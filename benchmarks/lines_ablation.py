"""What each part of the line generator is worth on real scans: the same network trained for
the same time on lines of each generator variant, then read on held-out generated lines and on
real lines it never saw.

Variants, each adding one part to the one before:
- first: the first generator's twelve DejaVu/STIX faces (`classic`), its fixed prose, the
  hand-written scan (`--degradation classic`);
- + faces: the era's faces (Courier, Times, Helvetica; regular, bold, italic);
- + degradation: augraphy's printing effects before the scan;
- + text: the technical-report text (the built-in corpus): today's default generator.
(Hyphenated line ends come with the text layer but are drawn for every variant.)

The table gives, per variant, the lines trained, the CER on every held-out generated line of
its own set, the CER on the real lines, and their ratio (the issue's transfer measure).
Generation time is not counted in the training time (sets are made first, and cached).
With `--lines N` every variant trains on the same number of lines instead of for the same
time, so other work on the machine cannot favour one variant over another.

    nice .venv/bin/python benchmarks/lines_ablation.py --real ../shared/data/uw3-sample \
        --minutes 60 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from lstmbench.bench.lines import time_limited_reading
from lstmbench.data.lines.corpus import PROSE
from lstmbench.data.lines.dataset import load_line_set
from lstmbench.data.lines.generate import GenerationParams, generate
from lstmbench.training.config import RunConfig


def variants(size: str, prose: Path) -> dict[str, GenerationParams]:
    first = GenerationParams(size, 0, ("classic",), str(prose), "classic")
    faces = GenerationParams(size, 0, (), str(prose), "classic")
    degradation = GenerationParams(size, 0, (), str(prose), "augraphy")
    text = GenerationParams(size, 0)
    return {"first": first, "+ faces": faces, "+ degradation": degradation, "+ text": text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, help="real line images (a directory)")
    parser.add_argument("--minutes", type=float, default=60.0, help="training time a variant")
    parser.add_argument(
        "--lines", type=int, default=0, help="train on this many lines a variant (not minutes)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="small", help="generated set size (default: small)")
    parser.add_argument("--workers", type=int, default=2, help="processes making the sets")
    parser.add_argument("--cache", help="where the sets are made (default: the user cache)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--only", action="append", help="a variant to run; repeatable")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    real = load_line_set(Path(args.real), log=lambda message: print(message, file=sys.stderr))
    work = Path(tempfile.mkdtemp(prefix="lines-ablation-"))
    prose = work / "prose.txt"
    prose.write_text(PROSE)
    cache = Path(args.cache) if args.cache else None
    rows = []
    for name, params in variants(args.size, prose).items():
        if args.only and name not in args.only:
            continue
        directory = generate(params, cache, args.workers, log=print)
        config = RunConfig(
            dataset=f"uw3like:{directory}",
            cell="NPLSTM",
            direction="bidi",
            hidden=args.hidden,
            lr=args.lr,
            batch_size=args.batch_size,
            epochs=1000.0,  # the time limit ends the run, unless --lines does
            samples=args.lines,
            eval_every=4000,
            eval_samples=300,
        )
        minutes = float("inf") if args.lines else args.minutes
        reading = time_limited_reading(config, minutes, None, "cpu", str(work / "runs"), real)
        ratio = reading.real_cer / reading.generated_cer if reading.generated_cer else float("nan")
        rows.append((name, reading, ratio))
        print(
            f"{name}: {reading.lines_trained} lines in {reading.minutes:.1f} min "
            f"({reading.status}); CER {reading.generated_cer:.2%} generated, "
            f"{reading.real_cer:.2%} real",
            flush=True,
        )
    length = f"{args.lines:,} lines" if args.lines else f"{args.minutes:g} min"
    print(f"\n{length} a variant, {args.threads} thread(s), BIDI NPLSTM {args.hidden}")
    print(
        "| generator | lines trained | minutes | lowest CER during training (after lines) | "
        "CER generated | CER real | real / generated | CER real at the lowest CER (best.pt) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, reading, ratio in rows:
        # "-": the lowest CER came at the end, so best.pt is the final model
        at_best = f"{reading.best_real_cer:.2%}" if reading.best_real_cer is not None else "-"
        print(
            f"| {name} | {reading.lines_trained:,} | {reading.minutes:.1f} | "
            f"{reading.best_cer:.2%} ({reading.best_lines:,}) | "
            f"{reading.generated_cer:.2%} | {reading.real_cer:.2%} | {ratio:.2f} | {at_best} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
