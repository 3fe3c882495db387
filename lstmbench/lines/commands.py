"""Command-line: `lines show`, `lines measure`, `data make-lines`, `ocr`, and `eval` on lines."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UserError

SHEET_WIDTH = 1600


def _subcommands(parser: argparse.ArgumentParser):
    # The `data` command is defined by the core CLI; its sub-actions are extended here.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the data command has no subcommands")


def add_commands(commands) -> None:
    """Add the text-line subcommands to the `lstmbench` parser."""
    from ..cli import add_runtime_options

    lines = commands.add_parser("lines", help="inspect and measure text-line data")
    actions = lines.add_subparsers(dest="lines_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="contact sheet of original and 48 px lines")
    show.add_argument("path", help="directory, list file or .h5 file of lines")
    show.add_argument("-o", "--output", default="sheet.png", help="image to write")
    show.add_argument("--limit", type=int, default=20, help="lines to draw (default: 20)")
    show.set_defaults(handler=show_command)

    measure = actions.add_parser(
        "measure", help="generation rate and the share of a training step spent on data"
    )
    measure.add_argument("--dataset", default="uw3like:tiny", help="(default: uw3like:tiny)")
    measure.add_argument("--lines", type=int, default=200, help="lines to generate for the rate")
    measure.add_argument("--steps", type=int, default=20, help="training steps to time")
    measure.add_argument("--batch-size", type=int, default=32)
    measure.add_argument("--hidden", type=int, default=100)
    add_runtime_options(measure)
    measure.set_defaults(handler=measure_command)

    bench = actions.add_parser(
        "benchmark", help="train for a fixed time, then CER on generated and real lines"
    )
    bench.add_argument("--dataset", default="uw3like:small", help="(default: uw3like:small)")
    bench.add_argument("--minutes", type=float, default=30.0, help="training time (default: 30)")
    bench.add_argument("--real", help="real lines scored without training on them (a directory)")
    bench.add_argument("--cell", default="NPLSTM")
    bench.add_argument("--direction", default="bidi")
    bench.add_argument("--hidden", type=int, default=100)
    bench.add_argument("--lr", type=float, default=1e-2)
    bench.add_argument("--momentum", type=float, default=0.9)
    bench.add_argument("--batch-size", type=int, default=4)
    bench.add_argument("--eval-every", type=int, default=2000)
    bench.add_argument("--eval-samples", type=int, default=300)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--out", default="runs", help="where the run directory goes")
    add_runtime_options(bench)
    bench.set_defaults(handler=benchmark_command)

    make = _subcommands(commands.choices["data"]).add_parser(
        "make-lines", help="generate the UW3-like line set (once; reused from the cache)"
    )
    make.add_argument("--size", default="small", help="tiny, small or full (default: small)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--corpus", default="", help="UTF-8 text file (default: built-in text)")
    make.add_argument(
        "--font", action="append", default=[], help="font file to use instead; repeatable"
    )
    make.add_argument("--out", help="cache directory (default: ~/.cache/lstmbench/uw3like)")
    make.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    make.set_defaults(handler=make_lines_command)

    ocr = commands.add_parser("ocr", help="print the transcript of line images")
    ocr.add_argument("model", help="a run directory or its model.pt (trained on lines)")
    ocr.add_argument("images", nargs="+", help="line images (.png)")
    ocr.add_argument("--device", default="cpu")
    ocr.set_defaults(handler=ocr_command)


def show_command(args) -> int:
    """Draw a contact sheet: each line as read, then normalized to 48 px."""
    from PIL import Image

    from .normalize import EmptyLineError, normalize_line
    from .readers import read_lines

    report = read_lines(args.path)
    rows = []
    for line in report.lines[: max(1, args.limit)]:
        try:
            normalized = line.image if line.normalized else normalize_line(line.image)
        except EmptyLineError as error:
            report.skip(line.name, str(error))
            continue
        original = line.image if not line.normalized else 255 - line.image
        rows += [original, 255 - normalized, np.full((6, 1), 160, np.uint8)]
    if not rows:
        raise UserError(f"no usable lines in {args.path}: {report.summary()}")
    width = min(SHEET_WIDTH, max(row.shape[1] for row in rows))
    sheet = np.full((sum(row.shape[0] for row in rows), width), 255, np.uint8)
    y = 0
    for row in rows:
        if row.shape[1] == 1:
            sheet[y : y + row.shape[0]] = row[:, :1]
        else:
            sheet[y : y + row.shape[0], : min(width, row.shape[1])] = row[:, :width]
        y += row.shape[0]
    Image.fromarray(sheet).save(args.output)
    print(f"{report.summary()}; wrote {args.output}")
    return 0


def make_lines_command(args) -> int:
    """Generate (or find) a UW3-like line set and say how to train on it."""
    from .generate import GenerationParams, generate

    params = GenerationParams(args.size, args.seed, tuple(args.font), args.corpus)
    params.preset()
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    directory = generate(params, Path(args.out) if args.out else None, args.workers)
    custom = args.font or args.corpus
    name = (
        f"uw3like:{directory}"
        if custom or args.out
        else f"uw3like:{args.size}" + (f":{args.seed}" if args.seed else "")
    )
    print(f"lines are in {directory}; train with --dataset {name}")
    return 0


def ocr_command(args) -> int:
    """Print `NAME<TAB>TRANSCRIPT` for each line image; unreadable images are named."""
    from .dataset import LineDataset
    from .normalize import EmptyLineError, normalize_line
    from .readers import read_image
    from .recognize import decode_lines, load_line_model

    _, net, codec = load_line_model(args.model)
    net.to(args.device)
    images, names, failed = [], [], 0
    for path in args.images:
        try:
            images.append(normalize_line(read_image(Path(path))))
            names.append(path)
        except (OSError, ValueError, EmptyLineError) as error:
            print(f"{path}: cannot read this line image ({error})", file=sys.stderr)
            failed += 1
    if images:
        lines = LineDataset(images, [""] * len(images), codec, names)
        for name, labels in zip(names, decode_lines(net, lines, args.device), strict=True):
            print(f"{name}\t{codec.decode(labels)}")
    return 1 if failed else 0


def eval_lines(args, config_values: dict) -> int:
    """CER of a line model on DATA (or its own test set), with the commonest confusions."""
    from .dataset import LineDataset, load_line_set
    from .recognize import load_line_model, score_lines

    _, net, codec = load_line_model(args.checkpoint)
    net.to(args.device)
    source = getattr(args, "test_data", None)
    if source and Path(source).exists():
        test = load_line_set(Path(source), codec)
    else:
        from ..data import load_dataset

        spec = source or config_values["dataset"]
        _, test = load_dataset(spec, args.data, config_values["validation"], config_values["seed"])
        if not isinstance(test, LineDataset):
            raise UserError(f"{spec} is not a text-line dataset; give a directory, list or .h5")
        test = LineDataset(test.images, test.texts, codec, test.names)
    unknown = test.unknown_characters()
    error, _, counts = score_lines(net, test, args.device)
    print(
        f"character error rate {error:.2%} on {len(test)} lines "
        f"({sum(len(t) for t in test.texts)} characters)"
    )
    if unknown:
        print(f"characters not in the model's codec (always errors): {''.join(sorted(unknown))}")
    if counts:
        print("most frequent errors (reference -> output, count):")
        for (reference, output), count in counts.most_common(10):
            print(f"  {reference or '(none)'!r:>8} -> {output or '(none)'!r:<8} {count}")
    return 0


def measure_command(args) -> int:
    """Lines/s generated, and the fraction of each training step spent waiting for data."""
    import torch

    from ..cli import setup_runtime
    from ..data import load_dataset
    from ..losses import sequence_loss
    from ..nets import SequenceNet
    from .generate import GenerationParams, make_line, split_words

    setup_runtime(args)
    params = GenerationParams("small", 12345)
    fonts, stretches = params.font_paths(), split_words(params.corpus_text())["train"]
    started = time.perf_counter()
    for index in range(args.lines):
        make_line(params, "train", index, stretches, fonts)
    rate = args.lines / (time.perf_counter() - started)
    print(f"generation: {rate:.1f} lines/s on one process ({args.lines} small-preset lines)")

    train, _ = load_dataset(args.dataset, args.data)
    net = SequenceNet("NPLSTM", train.n_features, args.hidden, train.n_classes, "bidi")
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    batches = train.epoch_batches(np.random.default_rng(0), args.batch_size)[: args.steps]
    waits, steps, padding = [], [], []
    for indices in batches:
        started = time.perf_counter()
        batch = train.batch(indices)
        loaded = time.perf_counter()
        logits = net(batch.inputs, batch.input_lengths)
        loss = sequence_loss(
            logits, "softmax", "ctc", batch.targets, batch.input_lengths, batch.target_lengths
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        waits.append(loaded - started)
        steps.append(time.perf_counter() - started)
        padding.append(1 - batch.input_lengths.sum().item() / batch.inputs.shape[0] / len(indices))
    fraction = np.median(np.array(waits) / np.array(steps))
    print(
        f"training on {args.dataset}: median step {np.median(steps) * 1000:.0f} ms, of which "
        f"data {np.median(waits) * 1000:.2f} ms ({fraction:.2%}); padded columns "
        f"{np.mean(padding):.1%} ({len(steps)} steps, batch {args.batch_size}, "
        f"BIDI NPLSTM {args.hidden})"
    )
    return 0


def benchmark_command(args) -> int:
    """Train one line model for a fixed wall-clock time; print CER on held-out generated
    lines and on real lines it never saw."""
    from ..cli import setup_runtime
    from ..config import RunConfig
    from ..train import run_directory, train_run
    from .dataset import load_line_set
    from .recognize import score_lines

    setup_runtime(args)
    if args.minutes <= 0:
        raise UserError(f"--minutes must be positive, got {args.minutes}")
    config = RunConfig(
        dataset=args.dataset,
        cell=args.cell,
        direction=args.direction,
        hidden=args.hidden,
        lr=args.lr,
        momentum=args.momentum,
        batch_size=args.batch_size,
        samples=10**9,  # the time limit ends the run
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        seed=args.seed,
    )
    real = load_line_set(Path(args.real)) if args.real else None  # fail early on a bad path
    result = train_run(
        config,
        args.data,
        args.device,
        args.out,
        progress=False,
        time_limit=60 * args.minutes,
        on_evaluation=lambda p: print(
            f"samples {p['samples']:>7}  loss {p['train_loss']:8.3f}  CER {p['test_error']:7.2%}"
            f"  ({p['wall_time']:.0f} s)",
            flush=True,
        ),
    )
    from ..data import load_dataset

    _, test = load_dataset(config.dataset, args.data, 0, config.seed)
    error, _, _ = score_lines(result.model, test, args.device)
    directory = run_directory(Path(args.out), config)
    if result.status != "done":
        print(f"the run {result.status}: {result.reason} (try a smaller --lr)")
    print(
        f"{config.cell} {config.direction} {config.hidden}: {result.samples_seen} lines in "
        f"{result.wall_time / 60:.1f} min; CER {error:.2%} on all {len(test)} held-out "
        f"generated lines ({directory})"
    )
    if real is not None:
        real = type(test)(real.images, real.texts, test.codec, real.names)
        error, _, counts = score_lines(result.model, real, args.device)
        print(f"CER {error:.2%} on {len(real)} real lines of {args.real} (never trained on)")
        for (reference, output), count in counts.most_common(8):
            print(f"  {reference or '(none)'!r:>8} -> {output or '(none)'!r:<8} {count}")
    return 0
