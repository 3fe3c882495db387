"""Planning a reproduction to a time budget: run lengths, run counts, learning-rate groups.

A budgeted reproduction (`lstmbench reproduce --budget 15m`) runs each experiment at the
settings of its spec's small scale, with the paper's batch size where the paper fixes one
(batch 1 trains fast enough now), but chooses for itself how long runs train and how many
there are:

- calibration: estimate.py times every configuration group of the experiment; a run's cost
  is then its training samples times the fused seconds per sample, plus its evaluations;
- which experiments, how long their runs: each needs its pilot and two rounds of MIN_RUNS
  main runs per learning-rate group at its least run length (MIN_UPDATES updates; shorter
  runs rarely learn). Experiments are planned cheapest per claim first while their needs
  fit; the rest are deferred. Then run lengths grow up LADDER while the total fits;
- learning-rate groups: the settings a learning rate's effect depends on (cell, output,
  direction, target, and momentum where it is drawn, in MOMENTUM_BINS). A pilot tries
  PILOT_POINTS rates across the paper's range per group; where the experiment's claims
  compare groups each at its best (ExperimentPlan.refine), a second stage tries REFINE_POINTS
  more around each group's best. The main runs of a group draw their rate from the band the
  pilot found (see analysis/pilot.py);
- rounds: the main budget is spent in ROUND_SHARES. A round gives each open experiment its
  least runs, then an equal share of the rest per claim still open (allocate_round), so
  cheap experiments get many runs and no claim waits on the dearest; between rounds the
  verdicts are drawn again and experiments whose claims are all decided get nothing more.
  Then top-up rounds take what is left until it pays for no run more, leaving out claims
  whose runs needed cost far more than that (cli/budget.py, REACH), and paying first, the
  cheapest first, the runs a power calculation says would decide each claim still open;
- measured speed: once an experiment's pilot has run, its wall time against what
  calibration predicted corrects that experiment's costs (cost_ratio), and again after each
  round: an experiment deferred on calibration's word joins when it fits beside what the
  open experiments still need at their measured speed (admit_deferred, before every round:
  experiments whose claims are decided free their time), and rounds are sized at the speed
  shown, so the budget is spent, not merely planned.

Everything chosen is kept in a plan file beside the results database, so the same command
resumes where it stopped: the runs of a group are drawn from a seed of their own, by index,
so a plan asks for the same runs every time and a store never trains one twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmbench.errors import UserError
from lstmbench.sweep.spec import GRID, Scale, Spec
from lstmbench.training.config import RunConfig

BUDGET_SCALE = "budget"  # the scale budgeted sweeps are stored under
LADDER = (
    *(1_000, 2_500, 5_000, 10_000, 20_000, 40_000, 60_000),
    *(120_000, 240_000, 600_000, 1_000_000, 2_000_000),
)
# Runs of fewer updates than this rarely leave the all-blank plateau on MNIST (at batch 1,
# 10,000 samples); the loss is a batch's mean, so a batch of b needs b times the samples.
MIN_UPDATES = 10_000
PILOT_POINTS = 5
REFINE_POINTS = 2  # a refining pilot's second stage: half a step either side of the best
MIN_RUNS = 4  # least main runs per learning-rate group and round (findings need 3 a group)
ROUND_SHARES = (0.5, 0.5)
MAX_ROUNDS = 12  # rounds one invocation adds at most: the shared rounds, then top-ups
# A measured round corrects calibration; keep a little back for the runs' spread around it.
MEASURED_USABLE = 0.95
EVALUATIONS = 5  # per run; the best error is the lowest of them
EVAL_SAMPLES = 1000  # test samples per evaluation: 0.1% steps, a few % error is resolved
# Packing runs into fused tasks on a few workers leaves cores idle at the end of a round,
# and evaluation and start-up are timed coarsely: plan to use this share of the cores.
USABLE = 0.8
REPORT_SECONDS = 30.0  # wall seconds kept back for the report
LR_GROUP_SETTINGS = ("cell", "output", "direction", "target")
MOMENTUM_BINS = ((0.0, 0.5), (0.5, 0.9), (0.9, 0.99))
# Every experiment by default: MNIST's at the small scale's settings, the line experiments
# and long_lines through their [budget] protocols (short generated lines; LSTM1 on MNIST).
DEFAULT_SPECS = (
    *("lr_hidden", "batch_momentum", "cell_types_mnist", "bidi_ctc_mnist"),
    *("cell_types_lines", "bidi_lines", "long_lines"),
)

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([hms])")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 15m, 2h, 90s or 1h30m."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise UserError(
            f"--budget {text!r} is not a duration; give a number and a unit h, m or s, "
            "e.g. 15m, 2h, 90s or 1h30m"
        )
    units = [u for _, u in parts]
    if len(set(units)) != len(units):
        raise UserError(f"--budget {text!r} gives a unit twice; e.g. 1h30m, not 1h1h")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"--budget {text!r} is no time at all; give more than 0, e.g. 15m")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as 1h30m, 15m or 45s (-20s for a budget overspent by 20 s)."""
    seconds = int(round(seconds))
    if seconds < 0:
        return "-" + format_duration(-seconds)
    hours, minutes, rest = seconds // 3600, seconds // 60 % 60, seconds % 60
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{rest}s" if rest or not text else "")


# -- groups and the runs they are given ---------------------------------------------------


def base_scale(spec: Spec) -> Scale:
    """The spec's [budget] protocol if it has one; else its small scale, with the paper's
    batch size where the paper fixes one."""
    if spec.budget is not None:
        return spec.budget.scale
    small = spec.scale("small")
    fixed = dict(small.fixed)
    if "batch_size" in spec.fixed and "batch_size" not in small.sweep:
        fixed["batch_size"] = spec.fixed["batch_size"]
    return Scale(small.runs, fixed, dict(small.sweep))


def evaluations(spec: Spec) -> int:
    """Evaluations a run of the experiment is given: its [budget] protocol's, or EVALUATIONS."""
    return (spec.budget.evaluations if spec.budget else 0) or EVALUATIONS


def eval_samples(spec: Spec) -> int:
    """Test samples an evaluation reads: its [budget] protocol's, or EVAL_SAMPLES."""
    own = spec.budget.eval_samples if spec.budget else None
    return EVAL_SAMPLES if own is None else own


def least_samples(spec: Spec) -> int:
    """The shortest run length at which the experiment's runs can be expected to learn:
    MIN_UPDATES updates of its typical batch (a drawn batch size: the geometric mean of
    its range), or what its [budget] protocol says."""
    if spec.budget is not None and spec.budget.least_samples:
        return spec.budget.least_samples
    scale = base_scale(spec)
    if "batch_size" in scale.sweep:
        values = scale.sweep["batch_size"].values
        batch = math.sqrt(values[0] * values[-1])
    else:
        batch = scale.fixed.get("batch_size", 1)
    return int(round(MIN_UPDATES * batch, -3))


def paper_lr_range(spec: Spec) -> tuple[float, float]:
    """The learning rates the paper's experiment drew from."""
    dimension = spec.sweep["lr"]
    return float(dimension.values[0]), float(dimension.values[-1])


def lr_groups(spec: Spec) -> list[dict]:
    """The learning-rate groups of an experiment: each a dict of the settings that define it
    (a setting on a grid: its value; momentum drawn: a [low, high] bin)."""
    sweep = base_scale(spec).sweep
    grids = [
        [(s, v) for v in sweep[s].values]
        for s in LR_GROUP_SETTINGS
        if s in sweep and sweep[s].kind == GRID
    ]
    keys = [dict(items) for items in _product(grids)]
    if "momentum" in sweep and sweep["momentum"].kind != GRID:
        keys = [{**k, "momentum": list(b)} for k in keys for b in MOMENTUM_BINS]
    return keys


def _product(lists: list[list]) -> list[list]:
    out = [[]]
    for options in lists:
        out = [prefix + [option] for prefix in out for option in options]
    return out


def in_group(key: dict, settings: dict) -> bool:
    """Whether a run's settings fall in the learning-rate group of `key`."""
    for setting, value in key.items():
        run_value = settings.get(setting)
        if isinstance(value, list):
            if run_value is None or not value[0] <= run_value <= value[1]:
                return False
        elif run_value != value:
            return False
    return True


def group_label(key: dict) -> str:
    """A group in words, e.g. 'cell=LSTM output=softmax' or 'momentum 0.5-0.9'."""
    parts = [
        f"{k} {v[0]:g}-{v[1]:g}" if isinstance(v, list) else f"{k}={v}" for k, v in key.items()
    ]
    return " ".join(parts) or "all runs"


def _values(spec: Spec, key: dict, samples: int, rng: np.random.Generator, index: int) -> dict:
    """One run's settings in a group, other than lr: a grid setting outside the group goes
    round-robin by index, a drawn one is drawn; momentum within the group's bin."""
    scale = base_scale(spec)
    values = dict(scale.fixed)
    for setting, dimension in scale.sweep.items():
        if setting in key or setting == "lr":
            continue
        if dimension.kind == GRID:
            values[setting] = dimension.values[index % len(dimension.values)]
        else:
            values[setting] = dimension.draw(rng)
    for setting, value in key.items():
        values[setting] = float(rng.uniform(*value)) if isinstance(value, list) else value
    values.update(
        samples=samples,
        eval_every=max(1, samples // evaluations(spec)),
        eval_samples=eval_samples(spec),
        seed=index,
    )
    return values


def main_configs(
    spec: Spec, group: int, key: dict, band: tuple[float, float], runs: int, samples: int
) -> list[RunConfig]:
    """The first `runs` main runs of a group, lr drawn log-uniformly from `band`. Run i is
    drawn from its own seed, so asking for more runs later keeps the first ones."""
    configs = []
    for index in range(runs):
        rng = np.random.default_rng([spec.seed, group, index])
        values = _values(spec, key, samples, rng, index)
        values["lr"] = float(math.exp(rng.uniform(math.log(band[0]), math.log(band[1]))))
        configs.append(RunConfig(**values))
    return configs


def pilot_lrs(spec: Spec) -> list[float]:
    """The learning rates a pilot tries: PILOT_POINTS, evenly on a log scale across the
    paper's range, both ends included."""
    low, high = paper_lr_range(spec)
    return [float(v) for v in np.geomspace(low, high, PILOT_POINTS)]


def pilot_configs(
    spec: Spec, group: int, key: dict, samples: int, lrs: list[float] | None = None
) -> list[RunConfig]:
    """One run per pilot learning rate (`lrs`, the first stage's by default), all else
    alike (one fused task): the group's first main-run settings, so hidden size and batch
    are typical of the group."""
    rng = np.random.default_rng([spec.seed, group, 0])
    values = _values(spec, key, samples, rng, 0)
    return [RunConfig(**{**values, "lr": lr}) for lr in (pilot_lrs(spec) if lrs is None else lrs)]


def calibration_spec(spec: Spec, samples: int) -> Spec:
    """The experiment at its budget settings, two runs per grid point, for estimate.py to
    time (two, so that a fused pack is timed as well)."""
    scale = base_scale(spec)
    grid = math.prod(len(d.values) for d in scale.sweep.values() if d.kind == GRID)
    fixed = {
        **scale.fixed,
        "samples": samples,
        "eval_every": max(1, samples // evaluations(spec)),
        "eval_samples": eval_samples(spec),
    }
    budget = Scale(2 * grid, fixed, scale.sweep)
    return dataclasses.replace(spec, scales={BUDGET_SCALE: budget})


# -- the plan -----------------------------------------------------------------------------


@dataclass
class Cost:
    """What one run of an experiment costs, from calibration: core-seconds per training
    sample (fused, per run) and per evaluated test sample, averaged over its groups."""

    train_sample: float
    eval_sample: float
    evaluations: int = EVALUATIONS  # per run
    eval_samples: int = EVAL_SAMPLES  # per evaluation (0: the whole test set)

    def run_seconds(self, samples: int) -> float:
        """Core-seconds of one run of `samples` training samples, evaluations included."""
        count = self.evaluations + 1  # one more where samples do not divide evenly
        read = self.eval_samples or EVAL_SAMPLES  # the whole test set: at most this, as a bound
        return self.train_sample * samples + count * read * self.eval_sample


@dataclass
class GroupPlan:
    """A learning-rate group: its settings, its pilot, its band, its main runs so far."""

    key: dict
    label: str
    pilot: list[dict] = field(default_factory=list)  # {"lr", "outcome", "best_error"}
    band: list[float] | None = None
    band_note: str = ""
    learned_in_pilot: bool | None = None  # None: pilot not run yet
    runs: int = 0  # main runs asked for so far (all rounds)
    # An open claim still reads its runs: rounds give runs to these groups only (a claim
    # whose other comparisons are decided needs runs of the groups it still compares).
    wanted: bool = True


@dataclass
class ExperimentPlan:
    """How one experiment spends its share: run length, cost per run, groups."""

    spec: str
    samples: int = 0
    least: int = MIN_UPDATES  # the shortest run length at which its runs learn (least_samples)
    claims: int = 1  # the paper's claims it tests
    cost: Cost | None = None
    groups: list[GroupPlan] = field(default_factory=list)
    note: str = ""
    verdicts: dict = field(default_factory=dict)  # claim -> verdict after the last round
    deviation: str = ""  # its [budget] protocol's departure from the paper's, if any
    # The paper's protocol timed here where the budget runs another: runs, core_hours,
    # ray_workers, ray_wall_hours (see estimate.py).
    paper_cost: dict = field(default_factory=dict)
    # Seconds per training sample of one run alone, by cell, all at one hidden size: timed
    # only where cells are compared on their speed (compare --budget; sweep/comparison.py).
    cell_seconds: dict = field(default_factory=dict)
    # Its claims compare groups each at its best rate: the pilot refines every group's band
    # around its best rate in a second stage (analysis/pilot.py).
    refine: bool = False
    # Calibration's configuration groups, each {"settings": its speed settings,
    # "train_sample", "eval_sample"}: what one run of given settings costs (run_cost), where
    # the average (cost) would mislead, as for a pilot of the smallest hidden size.
    timings: list[dict] = field(default_factory=list)
    # Core-seconds its pilot and rounds took here (wall time times cores) and what
    # calibration predicted for the same runs: its own speed (cost_ratio).
    measured_seconds: float = 0.0
    predicted_seconds: float = 0.0
    # Open claims a top-up round left out: the runs their power calculation asks for cost
    # far more than the budget has left (claim -> core-seconds needed).
    beyond_reach: dict = field(default_factory=dict)
    # Open claims within a top-up round's reach, each with the new runs a group of the groups
    # it compares that its power calculation asks for (claim -> runs): a top-up pays these
    # first, the cheapest first (allocate_round).
    asks: dict = field(default_factory=dict)

    @property
    def measured_ratio(self) -> float | None:
        """Core-seconds its runs took here per core-second calibration predicted for them;
        None before any ran."""
        return self.measured_seconds / self.predicted_seconds if self.predicted_seconds else None

    @property
    def pilot_points(self) -> int:
        """Pilot runs per group at most, both stages."""
        return PILOT_POINTS + (REFINE_POINTS if self.refine else 0)

    @property
    def run_seconds(self) -> float:
        return self.cost.run_seconds(self.samples) if self.cost and self.samples else math.nan

    @property
    def planned(self) -> bool:
        return self.samples > 0


def run_cost(experiment: ExperimentPlan, config: RunConfig) -> float:
    """Core-seconds of one run, at the timing of calibration's group nearest its settings
    (the same names and choices, numbers nearest on a log scale); the experiment's average
    cost where calibration kept no groups."""
    if not experiment.timings:
        return experiment.cost.run_seconds(config.samples)
    values = config.to_dict()

    def distance(timing: dict) -> float:
        far = 0.0
        for setting, timed in timing["settings"].items():
            value = values.get(setting)
            numbers = all(isinstance(v, (int, float)) and v > 0 for v in (value, timed))
            if numbers and not isinstance(value, bool):
                far += abs(math.log(value / timed))
            elif value != timed:
                far += 1e3  # another cell, direction or dataset: far from any number
        return far

    nearest = min(experiment.timings, key=distance)
    cost = dataclasses.replace(
        experiment.cost, train_sample=nearest["train_sample"], eval_sample=nearest["eval_sample"]
    )
    return cost.run_seconds(config.samples)


@dataclass
class Round:
    """One round of main runs: its core-seconds, runs per group added, what was open."""

    number: int
    core_seconds: float
    added: dict = field(default_factory=dict)  # spec -> runs added per group given runs
    given: dict = field(default_factory=dict)  # spec -> groups given runs (absent: all)
    open_before: list[str] = field(default_factory=list)
    beyond_reach: list[str] = field(default_factory=list)  # open claims it gave nothing
    paid_first: list[str] = field(default_factory=list)  # "spec claim +runs": asks it paid
    done: bool = False
    wall_seconds: float = 0.0  # how long its runs took (0 until done)


@dataclass
class Plan:
    """A budgeted reproduction: the budget, the machine, every experiment and round."""

    budget: float  # wall seconds
    workers: int
    threads: int
    specs: list[str]
    experiments: list[ExperimentPlan] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    spent: float = 0.0  # wall seconds spent by this plan so far (over every invocation)
    # The budget its run lengths and pilots were chosen for, where a longer budget extended
    # it since (extend_plan); 0 if it never was.
    planned_for: float = 0.0
    calibration_seconds: float = 0.0
    pilot_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def cores(self) -> int:
        return self.workers * self.threads

    def experiment(self, spec: str) -> ExperimentPlan:
        return next(e for e in self.experiments if e.spec == spec)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        experiments = []
        for e in data["experiments"]:
            cost = Cost(**e["cost"]) if e.get("cost") else None
            groups = [GroupPlan(**g) for g in e["groups"]]
            experiments.append(ExperimentPlan(**{**e, "cost": cost, "groups": groups}))
        rounds = [Round(**r) for r in data["rounds"]]
        known = {f.name for f in dataclasses.fields(cls)}  # an older plan's extra keys
        kept = {k: v for k, v in data.items() if k in known}
        return cls(**{**kept, "experiments": experiments, "rounds": rounds})

    def save(self, path: Path) -> None:
        """Write the plan atomically (a stopped run leaves the old plan or the new one)."""
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        partial.replace(path)


def unrun_reasons(plan: Plan) -> dict[str, str]:
    """Why the plan made no runs of an experiment, for each it deferred (spec -> why): the
    report says so where it would name the command that fills the experiment."""
    return {e.spec: f"none in this budget ({e.note})" for e in plan.experiments if not e.planned}


def plan_path(db: str | Path) -> Path:
    """Where the plan of a results database is kept: beside it, .plan.json."""
    db = Path(db)
    return db.with_name(db.stem + ".plan.json")


def read_plan(path: Path) -> Plan | None:
    """The plan saved at `path`, or None if there is none."""
    if not path.is_file():
        return None
    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"the plan {path} cannot be read ({error})") from None


def load_plan(
    path: Path, budget: float, specs: list[str], resume: str = "--budget and --only"
) -> Plan | None:
    """The saved plan, if any. One made for other experiments, or for a longer budget than
    `budget`, is refused, naming the options (`resume`) that chose them; a `budget` longer
    than the plan's is for extend_plan."""
    try:
        plan = read_plan(path)
    except UserError as error:
        raise UserError(
            f"{error}; remove it and its database to start again, or give another --db"
        ) from None
    if plan is None:
        return None
    if plan.budget > budget or plan.specs != specs:
        raise UserError(
            f"the plan {path} was made for --budget {format_duration(plan.budget)} and "
            f"{', '.join(plan.specs)}; give the same {resume} to resume it (a longer "
            "--budget extends it), or another --db to plan anew"
        )
    return plan


# The start of the note a plan keeps when its top-ups stopped with time left (stop_note).
STOPPED = "the top-ups stopped"


def extend_plan(plan: Plan, budget: float) -> None:
    """Give a plan a longer budget. Its run lengths, pilots and bands stay as they were
    chosen, so the runs it has and the runs to come are of one protocol; the time added
    goes to top-up rounds, which pay first the runs the open claims' power calculations
    ask for. A note that the top-ups had stopped for want of time no longer holds."""
    plan.planned_for = plan.planned_for or plan.budget
    plan.budget = budget
    plan.notes = [note for note in plan.notes if not note.startswith(STOPPED)]


def usable_core_seconds(plan: Plan, wall_seconds: float) -> float:
    """Core-seconds of training that `wall_seconds` of the plan's workers can be counted on for."""
    return max(0.0, wall_seconds) * plan.cores * USABLE


def speed_ratio(plan: Plan) -> float | None:
    """Core-seconds the pilots and rounds took (idle cores at a phase's end included) per
    core-second calibration predicted for the same runs; None before any ran."""
    predicted = sum(e.predicted_seconds for e in plan.experiments)
    if not predicted:
        return None
    return sum(e.measured_seconds for e in plan.experiments) / predicted


def cost_ratio(plan: Plan, experiment: ExperimentPlan) -> float:
    """What an experiment's runs cost here per core-second calibration predicts: its own
    speed once it has run; before, calibration's word, or slower where all that ran so far
    was slower. Never faster on other experiments' showing: calibration times a few steps,
    and how far that errs depends on the runs' size (small, fused runs beat it by far
    more), so one experiment's speed does not carry over to another's."""
    if experiment.measured_ratio is not None:
        return experiment.measured_ratio
    return max(1.0, speed_ratio(plan) or 1.0)


def effective_run_seconds(plan: Plan, experiment: ExperimentPlan) -> float:
    """Core-seconds one of an experiment's main runs takes here (cost_ratio)."""
    return experiment.run_seconds * cost_ratio(plan, experiment)


def round_core_seconds(plan: Plan, wall_seconds: float) -> float:
    """Core-seconds of runs (effective_run_seconds) that `wall_seconds` pays for: USABLE of
    the cores until anything has run, then MEASURED_USABLE (the costs are measured)."""
    if speed_ratio(plan) is None:
        return usable_core_seconds(plan, wall_seconds)
    return max(0.0, wall_seconds) * plan.cores * MEASURED_USABLE


def budget_for(plan: Plan, core_seconds: float) -> float:
    """The budget whose time beyond the plan's pays for `core_seconds` more of runs at the
    measured speed (round_core_seconds), in whole five minutes."""
    wall = core_seconds / (plan.cores * MEASURED_USABLE)
    return plan.budget + math.ceil(wall / 300) * 300


def choose_lengths(plan: Plan, core_seconds: float) -> None:
    """Which experiments run, and how long their runs train, within `core_seconds`.

    An experiment needs its pilot and two rounds of MIN_RUNS runs per learning-rate group at
    its least run length (shorter runs rarely learn). Experiments are taken in order of what
    that costs per claim, the cheapest first, while their needs fit together: the budget goes
    to the claims it can decide, and the others are deferred with the budget that would
    plan them. Then run lengths grow up LADDER, the experiment furthest below its least
    length times the others' growth first, while the total still fits. A lone experiment
    runs at the longest length that fits, even below its least."""
    for experiment in plan.experiments:
        experiment.samples = 0
    candidates = [e for e in plan.experiments if e.cost is not None]
    need = {e.spec: _cost(e, _rung(e.least)) for e in candidates}
    order = sorted(candidates, key=lambda e: need[e.spec] / max(1, e.claims))
    chosen, used = [], 0.0
    for experiment in order:
        if used + need[experiment.spec] <= core_seconds:
            chosen.append(experiment)
            used += need[experiment.spec]
            experiment.samples = _rung(experiment.least)
    if not chosen and len(candidates) == 1:
        [lone] = candidates
        fitting = [s for s in LADDER if _cost(lone, s) <= core_seconds]
        lone.samples = fitting[-1] if fitting else 0
    for experiment in candidates:
        if experiment.samples:
            continue
        wall = (used + need[experiment.spec]) / (plan.cores * USABLE)
        experiment.note = (
            f"deferred: its {_runs_per_experiment(experiment)} runs of "
            f"{_rung(experiment.least):,} samples (the least at which its runs learn) need "
            f"{need[experiment.spec] / 3600:.2g} core-hours, more than the budget leaves after "
            f"the experiments whose claims cost less; about --budget "
            f"{format_duration(wall + REPORT_SECONDS + plan.calibration_seconds)} plans it"
        )
    _grow(chosen, core_seconds)
    for experiment in chosen + [e for e in candidates if e.samples and e not in chosen]:
        experiment.note = _planned_note(experiment)


def _planned_note(experiment: ExperimentPlan) -> str:
    runs = _runs_per_experiment(experiment)
    return (
        f"{experiment.samples:,} samples a run (least {experiment.least:,}): {runs} runs "
        f"({experiment.pilot_points} pilot and {len(ROUND_SHARES)}x{MIN_RUNS} main per group) at "
        f"least, {_cost(experiment, experiment.samples) / 3600:.2g} core-hours"
    )


def admit_deferred(plan: Plan, core_seconds: float, open_specs: Container[str]) -> list[str]:
    """Plan deferred experiments at their least run length, cheapest per claim first, where
    their needs fit in `core_seconds` (as round_core_seconds gives it) beside
    what the open planned experiments (`open_specs`) still lack of their least main rounds.
    Calibration times a few steps coarsely, so once the planned experiments have shown
    their real speed (cost_ratio) a deferred one may fit after all; and once an experiment's
    claims are all decided, the time it would have had goes to those deferred. Returns the
    names admitted."""
    least = len(ROUND_SHARES) * MIN_RUNS
    committed = sum(
        max(0, least - g.runs) * effective_run_seconds(plan, e)
        for e in plan.experiments
        if e.planned and e.spec in open_specs
        for g in wanted_groups(e)
    )
    deferred = [e for e in plan.experiments if not e.planned and e.cost is not None]
    admitted = []
    for experiment in sorted(deferred, key=lambda e: _cost(e, _rung(e.least)) / max(1, e.claims)):
        need = _cost(experiment, _rung(experiment.least)) * cost_ratio(plan, experiment)
        if committed + need <= core_seconds:
            committed += need
            experiment.samples = _rung(experiment.least)
            experiment.note = _planned_note(experiment) + "; admitted at the measured speed"
            admitted.append(experiment.spec)
    return admitted


def _cost(experiment: ExperimentPlan, samples: int) -> float:
    """Core-seconds of an experiment's least runs at a run length."""
    return _runs_per_experiment(experiment) * experiment.cost.run_seconds(samples)


def _rung(samples: int) -> int:
    """The shortest length of LADDER at least `samples` (the longest if none)."""
    return next((s for s in LADDER if s >= samples), LADDER[-1])


def _grow(chosen: list[ExperimentPlan], core_seconds: float) -> None:
    """Lengthen runs one rung at a time, the experiment relatively shortest first, while
    the total fits."""
    while True:
        total = sum(_cost(e, e.samples) for e in chosen)
        steps = []
        for e in chosen:
            longer = [s for s in LADDER if s > e.samples]
            if longer and total - _cost(e, e.samples) + _cost(e, longer[0]) <= core_seconds:
                steps.append((e.samples / e.least, e, longer[0]))
        if not steps:
            return
        _, experiment, samples = min(steps, key=lambda step: step[0])
        experiment.samples = samples


def _runs_per_experiment(experiment: ExperimentPlan) -> int:
    """Pilot and the least main runs an experiment is planned with."""
    return (experiment.pilot_points + len(ROUND_SHARES) * MIN_RUNS) * len(experiment.groups)


def allocate_round(
    plan: Plan, number: int, core_seconds: float, open_claims: Mapping[str, int]
) -> Round:
    """A round of new runs for the planned experiments with claims still open (`open_claims`:
    spec -> claims not decided yet); experiments whose claims are all decided get nothing.

    Runs go to the groups an open claim still reads (GroupPlan.wanted): a claim whose other
    comparisons are decided needs runs of the groups it still compares, not of all. Each
    experiment first gets what it lacks of its least runs (MIN_RUNS per group a shared
    round). What is left is split equally among the open claims, an experiment taking a
    share for each claim it leaves open, spent as the same number of new runs in each of
    those groups;
    so a cheap experiment (one group, short runs) gets many more runs than one of twelve
    groups, rather than the same few. No experiment more than doubles its runs in a round:
    claims are decided between rounds, and runs past a decision are wasted. A share that
    cannot pay for a run in each of its experiment's groups goes to the other claims. What
    is left after that goes to the next round. If the least runs do not fit, every open
    experiment gets the same number of new runs a group, as many as the time pays for.

    Before the equal shares, a top-up pays the open claims' asks (ExperimentPlan.asks, the
    runs a power calculation says would decide them), cheapest first, while they fit: a
    claim given the runs that decide it is worth more than the same time spread thin over
    claims no share of it decides."""
    chosen = [e for e in plan.experiments if e.planned and open_claims.get(e.spec, 0) > 0]
    round_ = Round(number, core_seconds, open_before=[e.spec for e in chosen])
    if not chosen:
        return round_
    wanted = {e.spec: wanted_groups(e) for e in chosen}
    # one run in each group given runs
    cost = {e.spec: effective_run_seconds(plan, e) * len(wanted[e.spec]) for e in chosen}
    have = {e.spec: min(g.runs for g in wanted[e.spec]) for e in chosen}
    target = MIN_RUNS * min(number, len(ROUND_SHARES))
    added = {e.spec: max(0, target - have[e.spec]) for e in chosen}
    rest = core_seconds - sum(added[s] * cost[s] for s in added)
    if rest < 0:
        per_group = int(core_seconds // sum(cost.values()))
        added = {s: per_group for s in added}
    else:
        rest = _pay_asks(chosen, added, have, cost, rest, round_.paid_first)
        _share_by_claim(chosen, added, have, cost, open_claims, rest)
    for experiment in chosen:
        if added[experiment.spec] > 0:
            round_.added[experiment.spec] = added[experiment.spec]
            round_.given[experiment.spec] = len(wanted[experiment.spec])
            for group in wanted[experiment.spec]:
                group.runs += added[experiment.spec]
    return round_


def wanted_groups(experiment: ExperimentPlan) -> list[GroupPlan]:
    """The groups an open claim still reads (all of them where none is marked)."""
    return [g for g in experiment.groups if g.wanted] or experiment.groups


def _room(spec: str, have: dict, added: dict) -> int:
    """New runs a group an experiment may still take this round: doubling its runs at most."""
    return max(0, max(have[spec], MIN_RUNS) * 2 - have[spec] - added[spec])


def _pay_asks(chosen, added: dict, have: dict, cost: dict, rest: float, paid: list) -> float:
    """Add to `added` the runs each open claim asks for (ExperimentPlan.asks), the cheapest
    to pay first, while they fit in `rest` core-seconds and within each experiment's room
    (runs it gets this round already count toward an ask); note each ask paid in `paid`.
    Returns what is left of `rest`."""
    asks = sorted(
        (runs * cost[e.spec], e.spec, claim, runs)
        for e in chosen
        for claim, runs in e.asks.items()
        if runs > 0
    )
    for _, spec, claim, runs in asks:
        more = min(runs - added[spec], _room(spec, have, added))
        if more <= 0 or more * cost[spec] > rest:
            continue
        added[spec] += more
        rest -= more * cost[spec]
        paid.append(f"{spec} {claim} +{more}")
    return rest


def _share_by_claim(chosen, added: dict, have: dict, cost: dict, open_claims, rest: float) -> None:
    """Add to `added` (spec -> new runs a group) an equal share of `rest` core-seconds per
    open claim, no experiment past twice the runs it had; a capped experiment's unspent
    share, and a share too small to pay for a run in each of its experiment's groups, is
    split again among the others."""

    def room(spec: str) -> int:
        return _room(spec, have, added)

    sharing = {e.spec for e in chosen}
    while sharing and rest > 0:
        per_claim = rest / sum(open_claims[s] for s in sharing)
        capped = {s for s in sharing if per_claim * open_claims[s] >= room(s) * cost[s]}
        if not capped:
            short = {spec for spec in sharing if per_claim * open_claims[spec] < cost[spec]}
            if short and short != sharing:
                sharing -= short  # shares that buy no run in each group go to the others
                continue
            for spec in sharing:
                added[spec] += int(per_claim * open_claims[spec] // cost[spec])
            return
        for spec in capped:
            rest -= room(spec) * cost[spec]
            added[spec] += room(spec)
        sharing -= capped


def planned_core_seconds(plan: Plan, round_: Round) -> float:
    """Core-seconds the runs a round added are estimated to take here."""
    return sum(
        runs
        * round_.given.get(spec, len(plan.experiment(spec).groups))
        * effective_run_seconds(plan, plan.experiment(spec))
        for spec, runs in round_.added.items()
    )


def round_runs(round_: Round, experiment: ExperimentPlan) -> str:
    """The main runs a round gave each of an experiment's groups, and how many groups got
    them where not all did: '12', or '12 (4 of 12 groups)'."""
    runs = str(round_.added.get(experiment.spec, 0))
    given, groups = round_.given.get(experiment.spec), len(experiment.groups)
    return runs if given is None or given == groups else f"{runs} ({given} of {groups} groups)"


def format_plan(plan: Plan) -> str:
    """The plan as a table: per experiment run length, cost as calibrated and as measured
    (its ratio), groups, runs per round."""
    extended = (
        f" (extended from {format_duration(plan.planned_for)}, the budget its run lengths "
        "were chosen for)"
        if plan.planned_for
        else ""
    )
    lines = [
        f"budget {format_duration(plan.budget)}{extended} on {plan.workers} worker(s) of "
        f"{plan.threads} thread(s); calibration took {plan.calibration_seconds:.0f} s",
    ]
    header = (
        "experiment",
        "samples/run",
        "core-s/run",
        "measured",
        "lr groups",
        "main runs/group",
        "note",
    )
    rows = []
    for e in plan.experiments:
        per_round = "+".join(round_runs(r, e) for r in plan.rounds) or "-"
        measured = e.measured_ratio
        rows.append(
            (
                e.spec,
                f"{e.samples:,}" if e.planned else "-",
                f"{e.run_seconds:.1f}" if e.planned else "-",
                f"x{measured:.2f}" if measured is not None else "-",
                str(len(e.groups)),
                per_round,
                e.note,
            )
        )
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:-1], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells) + "  " + row[-1])
    nothing = (
        "nothing (every claim decided)"
        if any(e.planned for e in plan.experiments)
        else "nothing (no experiment fits the budget)"
    )
    for r in plan.rounds:
        state = f"done in {format_duration(r.wall_seconds)}" if r.done else "planned"
        kind = "" if r.number <= len(ROUND_SHARES) else " (top-up)"
        beyond = f"; beyond reach: {', '.join(r.beyond_reach)}" if r.beyond_reach else ""
        paid = f"; paid first: {', '.join(r.paid_first)}" if r.paid_first else ""
        lines.append(
            f"round {r.number}{kind}: {r.core_seconds / 3600:.2g} core-hours for "
            f"{', '.join(r.open_before) or nothing} ({state}){paid}{beyond}"
        )
    ratio = speed_ratio(plan)
    if ratio is not None:
        lines.append(f"pilots and rounds took {ratio:.2f}x the core time calibration predicted")
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)
