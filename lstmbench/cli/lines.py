"""`lines show`, `lines measure`, `lines benchmark` and `ocr` (and `lines kfold`, cli/kfold.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from lstmbench.cli import kfold
from lstmbench.cli.options import add_run_options, add_runtime_options, run_config, setup_runtime
from lstmbench.errors import UserError

SHEET_WIDTH = 1600


def add_commands(commands) -> None:
    """Add the text-line subcommands to the `lstmbench` parser."""
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
    measure.add_argument("--lines", type=int, default=200, help="lines to generate for the rate")
    measure.add_argument("--steps", type=int, default=20, help="training steps to time")
    add_run_options(measure, dataset="uw3like:tiny", lr=1e-4)
    add_runtime_options(measure)
    measure.set_defaults(handler=measure_command)

    bench = actions.add_parser(
        "benchmark", help="train for a fixed time, then CER on generated and real lines"
    )
    bench.add_argument("--minutes", type=float, default=60.0, help="training time (default: 60)")
    bench.add_argument("--real", help="real lines scored without training on them (a directory)")
    bench.add_argument("--out", default="runs", help="where the run directory goes")
    # The settings that read real lines best in an hour here (docs/lines.md, "An hour of
    # training"): the longer lines of the full set, Adam, the rate halved on plateaus, the
    # lines read at 32 px in batches of 8 (1.7 times the lines an hour of 48 px in fours).
    add_run_options(
        bench,
        dataset="uw3like:full",
        optimizer="adam",
        lr=1.4e-3,
        halve_lr_after=5,
        batch_size=8,
        line_height=32,
        epochs=1000.0,  # --minutes ends the run
        eval_every=2000,
        eval_samples=300,
    )
    add_runtime_options(bench)
    bench.set_defaults(handler=benchmark_command)

    stats = actions.add_parser(
        "scan-stats",
        help="ink, stroke width, edge roughness, specks and grey of real and generated lines",
    )
    stats.add_argument("--real", required=True, help="real line images (a directory)")
    stats.add_argument("--lines", type=int, default=100, help="generated lines a row (100)")
    stats.add_argument(
        "--strength",
        type=float,
        action="append",
        help="an augraphy strength to measure, 0 to 1; repeatable (default: 0.25, 0.5, 1)",
    )
    stats.set_defaults(handler=scan_stats_command)

    kfold.add_action(actions)

    ocr = commands.add_parser("ocr", help="print the transcript of line images")
    ocr.add_argument("model", help="a run directory or its model.pt (trained on lines)")
    ocr.add_argument("images", nargs="+", help="line images (.png)")
    ocr.add_argument("--device", default="cpu")
    ocr.set_defaults(handler=ocr_command)


def show_command(args) -> int:
    """Draw a contact sheet: each line as read, then normalized to 48 px."""
    from PIL import Image

    from lstmbench.data.lines.normalize import EmptyLineError, normalize_line
    from lstmbench.data.lines.readers import read_lines

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


def ocr_command(args) -> int:
    """Print `NAME<TAB>TRANSCRIPT` for each line image; unreadable images are named."""
    from lstmbench.data.lines.dataset import LineDataset
    from lstmbench.data.lines.normalize import EmptyLineError, normalize_line
    from lstmbench.data.lines.readers import read_image
    from lstmbench.training.recognize import decode_lines, load_line_model

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


def scan_stats_command(args) -> int:
    """Each statistic of scan_stats.py, median over real lines and over generated lines of
    the classic degradation and of augraphy's at each strength; which comes closest."""
    from lstmbench.data.lines.dataset import load_line_set
    from lstmbench.data.lines.generate import GenerationParams, sample_lines
    from lstmbench.data.lines.scan_stats import comparison_table, distance, summarize

    if args.lines < 1:
        raise UserError(f"--lines must be at least 1, got {args.lines}")
    real = load_line_set(args.real, log=lambda message: print(message, file=sys.stderr))
    sets = {"real": summarize(real.images)}
    variants = [GenerationParams(degradation="classic")] + [
        GenerationParams(degradation="augraphy", strength=s)
        for s in (args.strength or [0.25, 0.5, 1.0])
    ]
    for params in variants:
        params.check()
        sample_lines(params, 1)  # imports and first-use set-up, not counted in the rate
        started = time.perf_counter()
        images = sample_lines(params, args.lines)
        rate = args.lines / (time.perf_counter() - started)
        name = params.degradation + (
            f" {params.strength:g}" if params.degradation == "augraphy" else ""
        )
        sets[f"{name} ({rate:.0f} lines/s)"] = summarize(images)
    print(comparison_table(sets, "real"))
    closest = min((n for n in sets if n != "real"), key=lambda n: distance(sets[n], sets["real"]))
    print(f"closest to the real lines (sum of |log ratio| over the statistics): {closest}")
    return 0


def measure_command(args) -> int:
    """Lines/s generated, and the share of training time spent assembling batches."""
    import dataclasses

    from lstmbench.data import load_dataset
    from lstmbench.data.lines.generate import GenerationParams, make_line, split_words
    from lstmbench.training.loop import train_run

    setup_runtime(args)
    if args.lines < 1 or args.steps < 1:
        raise UserError("--lines and --steps must be at least 1")
    params = GenerationParams("small", 12345)
    fonts, stretches = params.font_paths(), split_words(params.corpus_text())["train"]
    started = time.perf_counter()
    for index in range(args.lines):
        make_line(params, "train", index, stretches, fonts)
    rate = args.lines / (time.perf_counter() - started)
    print(f"generation: {rate:.1f} lines/s on one process ({args.lines} small-preset lines)")

    config = run_config(args)
    steps = args.steps * config.batch_size
    config = dataclasses.replace(config, samples=steps, eval_every=steps, eval_samples=1)
    datasets = load_dataset(config.dataset, args.data, config.validation, config.seed)
    batches = datasets[0].epoch_batches(np.random.default_rng(config.seed), config.batch_size)
    widths = [datasets[0].batch(indices).input_lengths for indices in batches[: args.steps]]
    padding = np.mean([1 - w.sum().item() / w.max().item() / len(w) for w in widths])
    result = train_run(config, device=args.device, progress=False, datasets=datasets)
    training = result.curve[-1]["wall_time"]  # before the closing evaluation
    print(
        f"training on {config.dataset}: {training / args.steps * 1000:.0f} ms a step, of which "
        f"data {result.data_time / args.steps * 1000:.2f} ms ({result.data_time / training:.2%}); "
        f"padded columns {padding:.1%} ({args.steps} steps, batch {config.batch_size}, "
        f"{config.direction} {config.cell} {config.hidden})"
    )
    return 0


def benchmark_command(args) -> int:
    """Train one line model for a fixed wall-clock time; print CER on held-out generated
    lines and on real lines it never saw."""
    from lstmbench.bench.lines import time_limited_reading
    from lstmbench.data.lines.dataset import load_line_set
    from lstmbench.training.checkpoint import BEST

    setup_runtime(args)
    if args.minutes <= 0:
        raise UserError(f"--minutes must be positive, got {args.minutes}")
    config = run_config(args)
    real = load_line_set(Path(args.real)) if args.real else None  # fail early on a bad path
    reading = time_limited_reading(
        config,
        args.minutes,
        args.data,
        args.device,
        args.out,
        real,
        on_evaluation=lambda _, p: print(
            f"samples {p['samples']:>7}  loss {p['train_loss']:8.3f}  CER {p['test_error']:7.2%}"
            f"  ({p['wall_time']:.0f} s)",
            flush=True,
        ),
    )
    if reading.status != "done":
        print(f"the run {reading.status}: {reading.reason} (try a smaller --lr)")
    print(
        f"lowest CER during training: {reading.best_cer:.2%} after {reading.best_lines} lines "
        f"(on {config.eval_samples or 'all'} generated test lines an evaluation)"
    )
    print(
        f"{config.cell} {config.direction} {config.hidden}: {reading.lines_trained} lines in "
        f"{reading.minutes:.1f} min; CER {reading.generated_cer:.2%} on all "
        f"{reading.generated_lines} held-out generated lines ({reading.run_directory})"
    )
    if reading.real_cer is not None:
        print(
            f"CER {reading.real_cer:.2%} on {reading.real_lines} real lines of {args.real} "
            "(never trained on)"
        )
        if reading.best_real_cer is not None:
            print(
                f"CER {reading.best_real_cer:.2%} on the real lines by the model at the lowest "
                f"CER during training ({reading.run_directory / BEST})"
            )
        for (reference, output), count in reading.confusions.most_common(8):
            print(f"  {reference or '(none)'!r:>8} -> {output or '(none)'!r:<8} {count}")
    return 0
