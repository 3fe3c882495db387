"""What a spec will cost, measured before it runs: core-hours and wall time, alone and fused.

The runs of a spec are grouped into configuration groups: runs that differ only in settings
that leave the speed of a training step alone (learning rate, momentum, seed, and how long
or how often they train and evaluate) are one group. Each group is timed here, with the
real training loop on truncated copies of its runs:

- alone: one run of `steps` training steps (four times as many where that took under
  MIN_TIMED_SECONDS, as fast runs of small networks do) and one of a quarter as many, after
  a warmup of two steps, best of `repeats` each;
- fused: the group's largest pack (as make_tasks packs it with `pack`) of such runs through
  one fused computation, the same way;
- evaluation: `evaluate` on up to EVAL_TIMING test samples of a trained run.

Seconds per training sample come from the loop's own clock (it includes loading batches and
excludes building the network and the final evaluation), as the difference between the long
and the short timing over the difference of their samples: the loop's start (an epoch's
sample order, the first calls; 10 to 30 ms) costs as much as 30 steps of a small network at
batch 1, and would double the figure, where a run of thousands of steps pays it once. A
run's cost is its training samples times that, plus its evaluations: ceil(samples /
eval_every) of them, each of eval_samples test samples (all of the test set for 0). A fused
task of k runs, when the pack timed had K, costs by linear interpolation between the run
alone (k = 1) and the K-pack.

Settings drawn at random over a range of whole numbers (hidden = { log_int_uniform = ... })
would make nearly every run its own group, so runs are grouped by ranges of them instead:
`bins` ranges, spaced as the draw is (log or linear), each timed at the mean of its runs'
values. Text lines are of varying width, so a line group's time is taken over one pass of
its first lines and scaled by the ratio of the whole set's mean width to theirs; a
`uw3like:SIZE` set that is not generated here is represented by its first lines, made in
memory (the same lines the whole set begins with).
"""

from __future__ import annotations

import heapq
import math
import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lstmbench.data import load_dataset
from lstmbench.errors import UserError
from lstmbench.sweep.executors import check_device_name, cpu_count, on_gpu
from lstmbench.sweep.spec import Spec
from lstmbench.training.config import RunConfig
from lstmbench.training.evaluate import evaluate
from lstmbench.training.fused import make_tasks
from lstmbench.training.loop import at_line_height, train_runs

# Settings that change how long or how often a run trains, or what it learns, but not the
# time of one training step: runs differing only in them share one timing.
NOT_SPEED = (
    "lr",
    "momentum",
    "seed",
    "samples",
    "epochs",
    "eval_every",
    "eval_samples",
    "validation",
    "stuck_evals",
    "halve_lr_after",
    "lr_schedule",
)
DRAWN_KINDS = ("int_uniform", "log_int_uniform")
EVAL_TIMING = 100  # test samples an evaluation is timed on
SAMPLE_LINES = 200  # least training lines made in memory for a set that is not generated
TIMING_LR = 1e-4  # small, so no timed run diverges; the rate does not change the speed
WARMUP_STEPS = 2
# A timing shorter than this is taken again four times as long: the difference of two
# timings must stand well clear of the jitter of the loop's start (a few ms).
MIN_TIMED_SECONDS = 0.25


@dataclass
class EstimateOptions:
    """What to estimate for (pack, workers, threads) and how carefully to time it."""

    scale: str = "tiny"
    pack: int = 8
    workers: int | None = None  # local workers; None: one per core
    ray_workers: int = 100
    threads: int = 1  # torch threads per worker, and so cores per worker
    steps: int = 30  # training steps per timing
    repeats: int = 2  # timings per group and mode; the fastest counts
    bins: int = 3  # ranges per setting drawn at random
    data_path: str | None = None
    device: str = "cpu"  # cpu: core-hours; cuda: GPU-hours, timed on this machine's GPU


def check_options(options: EstimateOptions) -> None:
    """Refuse options that cannot work, before any timing."""
    counts = {
        "--pack": options.pack,
        "--workers": options.workers if options.workers is not None else 1,
        "--ray-workers": options.ray_workers,
        "--threads": options.threads,
        "--steps": options.steps,
        "--repeats": options.repeats,
        "--bins": options.bins,
    }
    for name, value in counts.items():
        if value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    check_device_name(options.device)
    if on_gpu(options.device) and not torch.cuda.is_available():
        raise UserError(
            f"--device {options.device}: torch sees no GPU on this machine, and GPU-hours are "
            "timed on one; estimate on a GPU machine, or leave --device out for core-hours"
        )


@dataclass
class Group:
    """A configuration group: runs that train at one speed, and what timing them gave."""

    label: str
    runs: list[RunConfig]
    timed: RunConfig  # the settings timed (a drawn setting at its range's mean)
    ranges: dict = field(default_factory=dict)  # drawn setting -> (lowest, highest) in group
    pack: int = 1  # runs in the largest fused task of the group (K)
    alone: float = math.nan  # seconds per training sample, one run alone
    fused_task: float = math.nan  # seconds per training sample of a K-pack (all K runs)
    eval_sample: float = math.nan  # seconds per evaluated test sample
    width_scale: float = 1.0  # whole set's mean line width / the timed lines' (lines only)
    timing_seconds: float = 0.0  # how long timing this group took

    @property
    def fused(self) -> float:
        """Seconds per training sample per run, fused in packs of K (alone for K = 1)."""
        return self.fused_task / self.pack if self.pack > 1 else self.alone

    def task_sample_seconds(self, k: int) -> float:
        """Seconds per training sample of a fused task of k runs (k = 1: alone), by linear
        interpolation between the run alone and the timed K-pack."""
        if k <= 1 or self.pack <= 1:
            return self.alone * k
        return self.alone + (k - 1) / (self.pack - 1) * (self.fused_task - self.alone)


@dataclass
class DataInfo:
    """A dataset as timed: the sets to time on and the real set's sizes."""

    train: object
    test: object
    train_length: int
    test_length: int
    note: str = ""


@dataclass
class Estimate:
    """The estimate of a spec at a scale, with everything it was computed from."""

    spec: str
    scale: str
    options: EstimateOptions
    groups: list[Group]
    configs: list[RunConfig]
    data: dict  # dataset name -> DataInfo
    notes: list[str]
    machine: dict
    group_of: dict = field(default_factory=dict)  # run_id -> index of its group
    run_seconds: dict = field(default_factory=dict)  # run_id -> seconds alone
    tasks_alone: list[float] = field(default_factory=list)  # seconds of each task, in order
    tasks_fused: list[float] = field(default_factory=list)  # the same, on the local workers
    group_core_hours: list[tuple[float, float]] = field(default_factory=list)  # alone, fused

    @property
    def workers(self) -> int:
        """Local workers: --workers, else one per `threads` cores (one GPU: one at a time)."""
        if on_gpu(self.options.device):
            return self.options.workers or 1
        return self.options.workers or max(1, cpu_count() // self.options.threads)

    def core_hours(self, mode: str) -> float:
        """Core-hours of the whole spec, "alone" or "fused"."""
        return sum(self.group_core_hours[i][mode == "fused"] for i in range(len(self.groups)))

    def fused_tasks(self, workers: int) -> list[list[RunConfig]]:
        """The tasks `sweep run --pack` hands out to `workers` workers, in order."""
        return make_tasks(self.configs, self.options.pack, self.options.device, workers)

    def task_seconds(self, task: list[RunConfig]) -> float:
        """Seconds of a fused task: its training at the group's interpolated speed, and the
        evaluations of its runs."""
        group = self.groups[self.group_of[task[0].run_id]]
        seconds = group.task_sample_seconds(len(task)) * self.samples(task[0])
        return seconds + sum(self.eval_seconds(c, group) for c in task)

    def wall_hours(self, mode: str, workers: int) -> float:
        """Hours until the last task ends on `workers` workers of `threads` cores each; fused,
        in packs of about a worker's share of the work at most (as the runner packs them)."""
        if mode == "fused":
            tasks = [self.task_seconds(task) for task in self.fused_tasks(workers)]
        else:
            tasks = self.tasks_alone
        return schedule(tasks, workers) / 3600

    def to_dict(self) -> dict:
        """The estimate as plain data, for the record."""
        groups = []
        for group, (alone, fused) in zip(self.groups, self.group_core_hours, strict=True):
            timed = {k: v for k, v in group.timed.to_dict().items() if k not in NOT_SPEED}
            groups.append(
                {
                    "label": group.label,
                    "runs": len(group.runs),
                    "timed_settings": timed,
                    "drawn_ranges": {k: list(v) for k, v in group.ranges.items()},
                    "samples_per_run": float(np.mean([self.samples(c) for c in group.runs])),
                    "evaluations_per_run": float(
                        np.mean([self.evaluations(c) for c in group.runs])
                    ),
                    "seconds_per_sample_alone": group.alone,
                    "seconds_per_sample_fused": group.fused,
                    "fused_pack_timed": group.pack,
                    "seconds_per_eval_sample": group.eval_sample,
                    "width_scale": group.width_scale,
                    "core_hours_alone": alone,
                    "core_hours_fused": fused,
                    "timing_seconds": group.timing_seconds,
                }
            )
        options = {k: v for k, v in vars(self.options).items() if k != "data_path"}
        options["workers"] = self.workers
        walls = {}
        for name, workers in (("local", self.workers), ("ray", self.options.ray_workers)):
            walls[name] = {
                "workers": workers,
                "cores_per_worker": self.options.threads,
                "hours_alone": self.wall_hours("alone", workers),
                "hours_fused": self.wall_hours("fused", workers),
            }
        return {
            "spec": self.spec,
            "scale": self.scale,
            "runs": len(self.configs),
            "options": options,
            "machine": self.machine,
            "notes": self.notes,
            "groups": groups,
            "tasks": {"alone": len(self.tasks_alone), "fused": len(self.tasks_fused)},
            "core_hours": {"alone": self.core_hours("alone"), "fused": self.core_hours("fused")},
            "wall": walls,
        }

    def samples(self, config: RunConfig) -> int:
        """Training samples of a run, as the training loop counts them."""
        if config.samples:
            return config.samples
        length = self.data[config.dataset].train_length - config.validation
        return int(round(config.epochs * length))

    def evaluations(self, config: RunConfig) -> int:
        """Evaluations in a run: one per eval_every samples, the last at its end."""
        return math.ceil(self.samples(config) / config.eval_every)

    def eval_seconds(self, config: RunConfig, group: Group) -> float:
        """Seconds a run spends evaluating, over all its evaluations."""
        data = self.data[config.dataset]
        available = config.validation or data.test_length
        count = min(config.eval_samples, available) if config.eval_samples else available
        return self.evaluations(config) * count * group.eval_sample


def schedule(durations: list[float], workers: int) -> float:
    """When the last task ends if tasks start in order, each on the first worker free (as
    the sweep runner hands them out); at least the longest task, at least the total/workers."""
    free = [0.0] * min(workers, max(1, len(durations)))
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def estimate_spec(spec: Spec, options: EstimateOptions, log=None) -> Estimate:
    """Time the configuration groups of a spec at a scale and cost out its runs."""
    check_options(options)
    log = log or (lambda message: None)
    configs = spec.expand(options.scale)
    groups, notes = _groups(spec, options, configs)
    group_of = {c.run_id: i for i, g in enumerate(groups) for c in g.runs}
    # each group timed at its largest pack: smaller tasks cost by interpolation
    for task in make_tasks(configs, options.pack, options.device):
        group = groups[group_of[task[0].run_id]]
        group.pack = max(group.pack, len(task))
    threads = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    load_before = os.getloadavg()[0]
    try:
        data = _datasets(groups, options, log)
        for number, group in enumerate(groups, 1):
            log(f"timing group {number}/{len(groups)}: {group.label} ({len(group.runs)} runs)")
            _time_group(group, data[group.timed.dataset], options)
    finally:
        torch.set_num_threads(threads)
    load_after = os.getloadavg()[0]
    notes += [info.note for info in data.values() if info.note]
    machine = {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cores": cpu_count(),
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }
    if on_gpu(options.device):
        machine["gpu"] = torch.cuda.get_device_name(torch.device(options.device))
    estimate = Estimate(
        spec.name, options.scale, options, groups, configs, data, notes, machine, group_of
    )
    _cost(estimate)
    return estimate


def _groups(spec: Spec, options: EstimateOptions, configs: list[RunConfig]):
    """Configuration groups, ordered by their settings, and notes on how they were made."""
    _, swept = spec.settings(options.scale)
    drawn = {s: d for s, d in swept.items() if d.kind in DRAWN_KINDS and s not in NOT_SPEED}
    edges, notes = {}, []
    for setting, dimension in drawn.items():
        values = sorted({getattr(c, setting) for c in configs})
        if len(values) <= options.bins:
            continue  # few enough values: a group each
        low, high = dimension.values[0], dimension.values[-1] + 1
        spaced = np.geomspace if dimension.kind.startswith("log") else np.linspace
        edges[setting] = spaced(low, high, options.bins + 1)
        notes.append(
            f"{setting} is drawn at random ({dimension.kind} {list(dimension.values)}): runs "
            f"grouped into {options.bins} {'log-' if spaced is np.geomspace else ''}spaced "
            f"ranges of it, each timed at the mean of its runs' {setting}"
        )
    members: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        key = {k: v for k, v in config.to_dict().items() if k not in NOT_SPEED}
        for setting, cuts in edges.items():
            key[setting] = int(np.searchsorted(cuts, key[setting], side="right"))
        members.setdefault(tuple(sorted(key.items())), []).append(config)
    varying = _varying(configs)
    groups = []
    for runs in members.values():
        values = runs[0].to_dict()
        ranges = {}
        for setting in edges:
            drawn_values = [getattr(c, setting) for c in runs]
            values[setting] = int(round(np.mean(drawn_values)))
            ranges[setting] = (min(drawn_values), max(drawn_values))
        values["lr"] = TIMING_LR
        timed = RunConfig(**values)
        groups.append(Group(_label(timed, varying, ranges), runs, timed, ranges))
    groups.sort(key=lambda g: tuple(getattr(g.timed, s) for s in varying))  # table order
    return groups, notes


def _varying(configs: list[RunConfig]) -> list[str]:
    """The speed settings that differ between runs (the others are printed once)."""
    first = configs[0].to_dict()
    names = [k for k in first if k not in NOT_SPEED]
    return [k for k in names if any(getattr(c, k) != first[k] for c in configs)]


def common_settings(configs: list[RunConfig]) -> dict:
    """The speed settings every run shares."""
    varying = set(_varying(configs))
    return {k: v for k, v in configs[0].to_dict().items() if k not in NOT_SPEED + tuple(varying)}


def _label(timed: RunConfig, varying: list[str], ranges: dict) -> str:
    parts = []
    for setting in varying:
        if setting in ranges:
            low, high = ranges[setting]
            value = getattr(timed, setting)
            parts.append(f"{setting} {low}-{high} (timed {value})")
        else:
            parts.append(f"{setting}={getattr(timed, setting)}")
    return " ".join(parts) or "all runs"


def _datasets(groups: list[Group], options: EstimateOptions, log) -> dict:
    """The sets each dataset of the spec is timed on, loaded once."""
    batch = {}
    for group in groups:
        name = group.timed.dataset
        batch[name] = max(batch.get(name, 1), group.timed.batch_size)
    data = {}
    for name, largest in batch.items():
        kind, _, argument = name.partition(":")
        if kind == "uw3like":
            from lstmbench.data.lines.generate import is_generated, parse_argument, sample_uw3like

            if not is_generated(argument, options.data_path):
                lines = max(SAMPLE_LINES, options.steps * largest)
                log(f"{name} is not generated here: making its first {lines} lines in memory")
                train, test = sample_uw3like(argument, lines, EVAL_TIMING)
                preset = parse_argument(argument).preset()
                note = (
                    f"{name} is not generated here: timed on its first {len(train)} training "
                    f"and {len(test)} test lines, made in memory (mean width "
                    f"{train.widths.mean():.0f} columns)"
                )
                data[name] = DataInfo(train, test, preset.train, preset.test, note)
                continue
        log(f"loading {name}")
        train, test = load_dataset(name, options.data_path)
        data[name] = DataInfo(train, test, len(train), len(test))
    return data


def _truncated(config: RunConfig, samples: int, **changes) -> RunConfig:
    """A copy that trains `samples` samples with one evaluation (at the end, off the clock)."""
    values = {**config.to_dict(), **changes}
    values.update(samples=samples, eval_every=samples, eval_samples=1, validation=0)
    return RunConfig(**values)


def _time_group(group: Group, data: DataInfo, options: EstimateOptions) -> None:
    """Fill in the group's seconds per sample (alone, fused) and per evaluated sample."""
    started = time.perf_counter()
    base = group.timed
    samples = options.steps * base.batch_size
    train = data.train
    widths = getattr(train, "widths", None)
    if widths is not None:
        # Varying widths: one pass over the first lines, so the timed lines are known.
        samples = min(samples, len(train))
        timed_set = train.subset(range(samples))
        group.width_scale = float(widths.mean() / timed_set.widths.mean())
        warm_set = train.subset(range(min(len(train), WARMUP_STEPS * base.batch_size)))
    else:
        samples = min(samples, len(train))
        timed_set = warm_set = train
    warm_set, timed_set, test = at_line_height(base, warm_set, timed_set, data.test)
    device = options.device
    warm = _truncated(base, min(samples, WARMUP_STEPS * base.batch_size))
    # first calls allocate (and build kernels); keep them off the clock
    train_runs([warm], (warm_set, test), device)
    datasets = (timed_set, test)
    alone, results, samples = _per_sample([base], datasets, options.repeats, samples, device)
    group.alone = alone * group.width_scale
    model = results[0].model.to(device)
    count = min(EVAL_TIMING, len(test))
    evaluation = min(_seconds(evaluate, model, test, count, device) for _ in range(2))
    group.eval_sample = evaluation / count
    if group.pack > 1:
        members = _largest_task(group, device)
        pack = [_truncated(c, samples, lr=TIMING_LR, **_drawn(group)) for c in members]
        fused, _, _ = _per_sample(pack, datasets, options.repeats, samples, device)
        group.fused_task = fused * group.width_scale
    group.timing_seconds = time.perf_counter() - started


def _largest_task(group: Group, device: str) -> list[RunConfig]:
    """The runs of the group's largest fused task (their seeds decide their batches)."""
    tasks = make_tasks(group.runs, group.pack, device)
    return max(tasks, key=len)


def _drawn(group: Group) -> dict:
    """The timed values of the group's drawn settings."""
    return {setting: getattr(group.timed, setting) for setting in group.ranges}


def _per_sample(configs: list[RunConfig], datasets, repeats: int, samples: int, device: str):
    """Seconds per training sample of `configs` trained together: slope_per_sample of a
    training of `samples` samples (four times as many where it took under
    MIN_TIMED_SECONDS and the set has them) and one of a quarter as many, each the fastest
    of `repeats`. Returns it, the long training's results and its samples."""
    long_seconds, results = _best(configs, datasets, repeats, samples, device)
    if long_seconds < MIN_TIMED_SECONDS and 4 * samples <= len(datasets[0]):
        samples *= 4
        long_seconds, results = _best(configs, datasets, repeats, samples, device)
    batch = configs[0].batch_size
    short = samples // 4 // batch * batch
    if not 0 < short < samples:
        return long_seconds / samples, results, samples
    short_seconds, _ = _best(configs, datasets, repeats, short, device)
    return slope_per_sample(short_seconds, short, long_seconds, samples), results, samples


def slope_per_sample(short_seconds: float, short: int, long_seconds: float, samples: int) -> float:
    """Seconds per sample between two timings of `short` and `samples` samples: what the
    longer one adds per sample, free of the fixed start. Where timing noise leaves it no
    larger than zero, the long timing's average (an upper bound)."""
    slope = (long_seconds - short_seconds) / (samples - short)
    return slope if slope > 0 else long_seconds / samples


def _best(configs: list[RunConfig], datasets, repeats: int, samples: int, device: str):
    """The fastest of `repeats` trainings of `samples` samples each: its seconds (all the
    runs together), from the loop's clock, and its results."""
    configs = [_truncated(c, samples) for c in configs]
    best, kept = math.inf, None
    for _ in range(repeats):
        results = train_runs(configs, datasets, device)
        if results[0].samples_seen < samples:
            raise RuntimeError(f"a timed run stopped early ({results[0].reason})")
        seconds = results[0].curve[-1]["wall_time"]
        if seconds < best:
            best, kept = seconds, results
    return best, kept


def _seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _cost(estimate: Estimate) -> None:
    """Seconds of every run alone and of every fused task on the local workers; core-hours
    per group (GPU-hours on a GPU: tasks timed one at a time on it, so an upper bound where
    several share it)."""
    threads = 1 if on_gpu(estimate.options.device) else estimate.options.threads
    alone = [0.0] * len(estimate.groups)
    fused = [0.0] * len(estimate.groups)
    for index, group in enumerate(estimate.groups):
        for config in group.runs:
            seconds = group.alone * estimate.samples(config) + estimate.eval_seconds(config, group)
            estimate.run_seconds[config.run_id] = seconds
            alone[index] += seconds
    # in the order `sweep run --pack 1` hands them out
    estimate.tasks_alone = [
        estimate.run_seconds[task[0].run_id] for task in make_tasks(estimate.configs, 1)
    ]
    for task in estimate.fused_tasks(estimate.workers):
        seconds = estimate.task_seconds(task)
        estimate.tasks_fused.append(seconds)
        fused[estimate.group_of[task[0].run_id]] += seconds
    estimate.group_core_hours = [
        (a * threads / 3600, f * threads / 3600) for a, f in zip(alone, fused, strict=True)
    ]


def format_estimate(estimate: Estimate) -> str:
    """The estimate as a table per group, totals and wall times."""
    options = estimate.options
    gpu = on_gpu(options.device)
    unit = "GPU-h" if gpu else "core-h"
    cores = "one core" if options.threads == 1 else f"{options.threads} cores"
    if gpu:
        cores = f"one GPU ({estimate.machine.get('gpu', options.device)})"
    lines = [
        f"{estimate.spec} at scale {estimate.scale}: {len(estimate.configs)} runs in "
        f"{len(estimate.groups)} configuration groups; {len(estimate.tasks_fused)} tasks "
        f"when fused in packs of up to {options.pack} for {estimate.workers} local "
        f"worker{'s' if estimate.workers != 1 else ''}",
        "common settings: "
        + " ".join(f"{k}={v}" for k, v in common_settings(estimate.configs).items()),
        f"timed here on {options.device} with {options.threads} thread(s) per run, "
        f"seconds per sample from timings of {options.steps} training steps (4x where "
        f"under {MIN_TIMED_SECONDS:g} s) less a quarter as many, fastest of "
        f"{options.repeats}; evaluation timed on up to {EVAL_TIMING} test samples",
    ]
    header = (
        "group",
        "runs",
        "samples/run",
        "evals/run",
        "s/sample alone",
        "s/sample fused (K)",
        f"{unit} alone",
        f"{unit} fused",
    )
    rows = []
    for group, (alone, fused) in zip(estimate.groups, estimate.group_core_hours, strict=True):
        samples = np.mean([estimate.samples(c) for c in group.runs])
        evals = np.mean([estimate.evaluations(c) for c in group.runs])
        rows.append(
            (
                group.label,
                str(len(group.runs)),
                f"{samples:,.0f}",
                f"{evals:.4g}",
                f"{group.alone:.3g}",
                f"{group.fused:.3g} ({group.pack})",
                _amount(alone),
                _amount(fused),
            )
        )
    total = (
        "total",
        str(len(estimate.configs)),
        "",
        "",
        "",
        "",
        _amount(estimate.core_hours("alone")),
        _amount(estimate.core_hours("fused")),
    )
    table = [header, *rows, total]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for number, row in enumerate(table):
        if number == len(table) - 1:
            lines.append("  ".join("-" * w for w in widths))
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    if gpu:
        lines.append(
            "GPU-hours: each task timed alone on the GPU; several sharing one (sweep run "
            "--tasks-per-gpu) may finish sooner"
        )
    lines.append("wall time, the dearest tasks first, each on the first free worker:")
    places = (
        (f"on {estimate.workers} local workers of {cores}", estimate.workers),
        (f"on {options.ray_workers} Ray workers of {cores}", options.ray_workers),
    )
    if gpu:
        places = (
            (f"on {cores}, a task at a time", 1),
            (
                f"on {options.ray_workers} such GPUs (Ray), a task at a time each",
                options.ray_workers,
            ),
        )
    for name, workers in places:
        alone, fused = (estimate.wall_hours(mode, workers) for mode in ("alone", "fused"))
        lines.append(f"  {name}: alone {_duration(alone)}, fused {_duration(fused)}")
    load = estimate.machine["load_average"]
    lines.append(
        f"load average {load[0]:.1f} before timing, {load[1]:.1f} after, on "
        f"{estimate.machine['cores']} cores: a busy machine times slower than an idle one"
    )
    lines += [f"note: {note}" for note in estimate.notes]
    return "\n".join(lines)


def _amount(hours: float) -> str:
    """Hours to three significant digits, whole hours from 100 on."""
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.3g}"


def _duration(hours: float) -> str:
    """Hours, and days where hours get hard to read; minutes or seconds below an hour."""
    if hours < 1 / 60:
        return f"{hours * 3600:.2g} s"
    if hours < 1:
        return f"{hours * 60:.2g} min"
    text = f"{_amount(hours)} h"
    return text + f" ({hours / 24:,.1f} days)" if hours >= 48 else text
