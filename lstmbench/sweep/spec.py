"""Experiment specs: a TOML file of fixed and swept run settings, at three scales or one.

A spec is validated completely when it is loaded, so a mistake stops a sweep before any run.

    name = "lr_hidden"              # the sweep's name in the results store
    description = "..."
    seed = 1                        # seeds the random draws of swept settings
    [fixed]                         # RunConfig fields shared by every run
    cell = "LSTM"
    [sweep]                         # swept RunConfig fields, one way each:
    hidden = { values = [50, 100] }         # grid: every value (crossed with other grids)
    lr = { log_uniform = [1e-6, 1e-1] }     # random: log-uniform, uniform, int_uniform,
    momentum = { choice = [0.0, 0.9] }      #   log_int_uniform (whole numbers) or choice
    [scales.tiny]                   # one table per scale: tiny, small, paper
    runs = 6                        # runs in all, spread round-robin over the grid points
    fixed = { samples = 300 }       # fixed settings for this scale (over [fixed])
    sweep = { hidden = { values = [4, 8] } }  # swept settings for this scale (over [sweep])
    [budget]                        # optional: how `reproduce --budget` runs it, over small
    fixed = { dataset = "uw3like:tiny" }    # settings over the small scale's
    evaluations = 20                # evaluations a run (default: the planner's)
    least_samples = 500000          # shortest run worth running (default: the planner's)
    deviation = "..."               # required: how and why this departs from the paper

A spec with [scales] gives all three scales. A spec without [scales] (a user's own
experiment, usually) has one budget: a top-level `runs = N`, or one run per grid point
without it, and runs as written at every --scale, since its [fixed] and [sweep] already say
what the user wants run.

Each run's seed is its draw number within its grid point (0, 1, 2, ...), unless the spec
fixes or sweeps `seed` itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstmbench.data import dataset_names
from lstmbench.errors import UserError
from lstmbench.training.config import RunConfig

SCALES = ("tiny", "small", "paper")
GRID = "values"
RANDOM_KINDS = ("log_uniform", "uniform", "int_uniform", "log_int_uniform", "choice")
SWEEP_KINDS = (GRID, *RANDOM_KINDS)
TOP_KEYS = ("name", "description", "seed", "runs", "fixed", "sweep", "scales", "budget")
SCALE_KEYS = ("runs", "fixed", "sweep")
BUDGET_KEYS = ("fixed", "sweep", "evaluations", "least_samples", "deviation")
FIELD_TYPES = {f.name: type(f.default) for f in dataclasses.fields(RunConfig)}
EXPERIMENTS = Path(__file__).resolve().parent / "specs"  # the paper's experiments, shipped


@dataclass(frozen=True)
class Dimension:
    """One swept setting: a grid of values, or a distribution to draw from."""

    setting: str
    kind: str
    values: tuple

    def draw(self, rng: np.random.Generator):
        """One random value (random kinds only)."""
        low, high = self.values[0], self.values[-1]
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        if self.kind == "uniform":
            return float(rng.uniform(low, high))
        if self.kind == "log_uniform":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        if self.kind == "int_uniform":
            return int(rng.integers(low, high + 1))
        value = math.exp(rng.uniform(math.log(low), math.log(high + 1)))
        return min(int(value), high)  # log_int_uniform


@dataclass(frozen=True)
class Scale:
    """How many runs a scale has, and its settings (the spec's, with the scale's overrides)."""

    runs: int
    fixed: dict = field(default_factory=dict)
    sweep: dict = field(default_factory=dict)  # setting -> Dimension


@dataclass(frozen=True)
class BudgetProtocol:
    """How a budgeted reproduction runs an experiment where the paper's protocol cannot fit
    a budget: settings over the small scale's, and the deviation said in words."""

    scale: Scale
    evaluations: int  # per run; 0: the planner's default
    least_samples: int  # the shortest run that can show what it tests; 0: the planner's
    deviation: str
    eval_samples: int | None = None  # test samples an evaluation, if [budget] fixes them


@dataclass(frozen=True)
class Spec:
    """A validated experiment spec."""

    name: str
    description: str
    seed: int
    fixed: dict
    sweep: dict  # setting -> Dimension
    scales: dict  # scale name -> Scale
    source: dict  # the file's content, stored with the sweep
    scaled: bool = True  # False: no [scales], the same runs at every scale
    budget: BudgetProtocol | None = None  # [budget]: a protocol of its own under a budget

    def settings(self, scale: str) -> tuple[dict, dict]:
        """The fixed settings and the swept dimensions at a scale."""
        chosen = self.scale(scale)
        return chosen.fixed, chosen.sweep

    def scale(self, scale: str) -> Scale:
        """One scale's budget, refusing unknown scale names."""
        if scale not in self.scales:
            raise UserError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
        return self.scales[scale]

    def expand(self, scale: str) -> list[RunConfig]:
        """The run configs of a scale, in a fixed order (duplicates dropped)."""
        runs = _expand(self, scale)
        for config in runs:
            _check_dataset_available(self.name, config.dataset)
        return runs


def _expand(spec: Spec, scale: str) -> list[RunConfig]:
    fixed, dimensions = spec.settings(scale)
    grid_dims = [d for d in dimensions.values() if d.kind == GRID]
    random_dims = [d for d in dimensions.values() if d.kind != GRID]
    points = list(itertools.product(*(d.values for d in grid_dims)))
    rng = np.random.default_rng(spec.seed)
    configs: dict[str, RunConfig] = {}
    for index in range(spec.scale(scale).runs):
        point = points[index % len(points)]
        values = dict(fixed)
        values.update({d.setting: v for d, v in zip(grid_dims, point, strict=True)})
        values.update({d.setting: d.draw(rng) for d in random_dims})
        if "seed" not in fixed and "seed" not in dimensions:
            values["seed"] = index // len(points)
        config = _config(spec.name, values)
        configs.setdefault(config.run_id, config)
    return list(configs.values())


def _check_dataset_available(spec_name: str, dataset: str) -> None:
    if dataset.partition(":")[0] not in dataset_names():
        raise UserError(
            f"spec {spec_name!r} uses dataset {dataset!r}, which this installation does not "
            f"provide (available: {', '.join(dataset_names())}); install or register it first"
        )


def _config(spec_name: str, values: dict) -> RunConfig:
    """A RunConfig; a dataset not registered yet is checked by name later, at expansion."""
    dataset = values.get("dataset", "mnist")
    available = dataset.partition(":")[0] in dataset_names()
    try:
        checked = RunConfig(**{**values, "dataset": dataset if available else "mnist"})
    except UserError as error:
        raise UserError(f"spec {spec_name!r}: {error}") from None
    return checked if available else _unchecked(checked, dataset)


def _unchecked(config: RunConfig, dataset: str) -> RunConfig:
    """The config with a dataset name that cannot be verified here yet."""
    copy = object.__new__(RunConfig)
    for name, value in config.to_dict().items():
        object.__setattr__(copy, name, value)
    object.__setattr__(copy, "dataset", dataset)
    return copy


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; a bare name is looked up among the shipped specs."""
    path = resolve_spec_path(path)
    try:
        content = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"spec {path} is not valid TOML: {error}") from None
    return parse_spec(content, str(path))


def resolve_spec_path(path: str | Path) -> Path:
    """A spec file path, or the name of one of the bundled experiments."""
    path = Path(path)
    if path.is_file():
        return path
    bundled = EXPERIMENTS / f"{path.stem}.toml"
    if path.parent == Path(".") and bundled.is_file():
        return bundled
    names = ", ".join(spec_names())
    raise UserError(f"no spec file {path}; give a TOML file or one of the experiments: {names}")


def spec_names() -> list[str]:
    """The bundled experiment specs."""
    return sorted(p.stem for p in EXPERIMENTS.glob("*.toml"))


def parse_spec(content: dict, where: str = "spec") -> Spec:
    """Validate a spec's content (from TOML) completely."""
    _check_keys(content, TOP_KEYS, where, "top-level key")
    name = content.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"{where}: `name` must be a word of letters, digits, _ or -, got {name!r}")
    seed = content.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{where}: `seed` must be a whole number, got {seed!r}")
    fixed = _fixed(content.get("fixed", {}), f"{where}: [fixed]")
    sweep = _dimensions(content.get("sweep", {}), f"{where}: [sweep]")
    _no_overlap(fixed, sweep, where)
    scales_table = content.get("scales")
    if scales_table is None:
        # No scales: every scale is the spec as written (top-level `runs`, if any).
        unscaled = _scale(
            {"runs": content["runs"]} if "runs" in content else {}, fixed, sweep, where
        )
        scales = dict.fromkeys(SCALES, unscaled)
    else:
        scales = _scales(scales_table, content, fixed, sweep, where)
    description = str(content.get("description", ""))
    budget = _budget(content["budget"], scales["small"], where) if "budget" in content else None
    spec = Spec(
        name, description, seed, fixed, sweep, scales, content, scales_table is not None, budget
    )
    for scale_name in SCALES:
        _expand(spec, scale_name)  # every value at every scale makes a valid RunConfig
    return spec


def _budget(table, small: Scale, where: str) -> BudgetProtocol:
    """The [budget] table: settings over the small scale's, evaluations, the deviation."""
    place = f"{where}: [budget]"
    if not isinstance(table, dict):
        raise UserError(f"{place} must be a table")
    _check_keys(table, BUDGET_KEYS, place, "key")
    deviation = table.get("deviation")
    if not isinstance(deviation, str) or not deviation.strip():
        raise UserError(
            f"{place}: give `deviation`, a sentence on how and why the budget's protocol "
            "departs from the paper's (the report prints it beside the verdicts)"
        )
    counts = {key: table.get(key, 0) for key in ("evaluations", "least_samples")}
    for key, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UserError(f"{place}: `{key}` must be a whole number, got {value!r}")
    settings = {k: v for k, v in table.items() if k in SCALE_KEYS}
    scale = _scale(settings, small.fixed, small.sweep, place)
    values = {**scale.fixed, **{k: d.values[0] for k, d in scale.sweep.items()}}
    _config(f"{where} [budget]", values)  # its settings make a valid RunConfig
    own = table.get("fixed", {})
    return BudgetProtocol(
        scale,
        counts["evaluations"],
        counts["least_samples"],
        deviation.strip(),
        own.get("eval_samples"),
    )


def _scales(table, content: dict, fixed: dict, sweep: dict, where: str) -> dict:
    """The three scales of a spec with [scales]; each must be given."""
    if not isinstance(table, dict):
        raise UserError(
            f"{where}: [scales] must hold [scales.tiny], [scales.small], [scales.paper]"
        )
    if "runs" in content:
        raise UserError(
            f"{where}: top-level `runs` is for a spec without [scales]; "
            "give `runs` in each [scales.NAME] table instead"
        )
    _check_keys(table, SCALES, f"{where}: [scales]", "scale")
    missing = [s for s in SCALES if s not in table]
    if missing:
        raise UserError(
            f"{where}: missing scale(s) {', '.join(missing)}; give all of {', '.join(SCALES)}, "
            "or leave out [scales] to run the spec as written at every scale"
        )
    return {name: _scale(table[name], fixed, sweep, f"{where}: [scales.{name}]") for name in SCALES}


def _scale(table, fixed: dict, sweep: dict, place: str) -> Scale:
    """A scale with its effective settings: what it fixes is no longer swept, and the reverse."""
    if not isinstance(table, dict):
        raise UserError(f"{place} must be a table")
    _check_keys(table, SCALE_KEYS, place, "key")
    scale_fixed = _fixed(table.get("fixed", {}), f"{place} fixed")
    scale_sweep = _dimensions(table.get("sweep", {}), f"{place} sweep")
    _no_overlap(scale_fixed, scale_sweep, place)
    all_fixed = {k: v for k, v in {**fixed, **scale_fixed}.items() if k not in scale_sweep}
    all_sweep = {k: v for k, v in {**sweep, **scale_sweep}.items() if k not in scale_fixed}
    grid_size = math.prod(len(d.values) for d in all_sweep.values() if d.kind == GRID)
    runs = table.get("runs", grid_size)
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise UserError(f"{place}: `runs` must be a whole number of at least 1, got {runs!r}")
    return Scale(runs, all_fixed, all_sweep)


def _check_keys(table: dict, valid, where: str, kind: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise UserError(
            f"{where}: unknown {kind}(s) {', '.join(unknown)}; valid {kind}s: {', '.join(valid)}"
        )


def _fixed(table, where: str) -> dict:
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table of run settings")
    _check_keys(table, FIELD_TYPES, where, "run setting")
    return {key: _typed(key, value, where) for key, value in table.items()}


def _typed(setting: str, value, where: str):
    """A setting's value in its RunConfig type, refusing values of the wrong kind."""
    kind = FIELD_TYPES[setting]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise UserError(
        f"{where}: {setting} must be {kind.__name__}, got {value!r} ({type(value).__name__})"
    )


def _dimensions(table, where: str) -> dict:
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table of swept settings")
    _check_keys(table, FIELD_TYPES, where, "run setting")
    return {
        setting: _dimension(setting, how, f"{where} {setting}") for setting, how in table.items()
    }


def _dimension(setting: str, how, where: str) -> Dimension:
    if not isinstance(how, dict) or len(how) != 1:
        raise UserError(
            f"{where}: give exactly one of {', '.join(SWEEP_KINDS)}, e.g. "
            f"{setting} = {{ values = [...] }}"
        )
    [(kind, values)] = how.items()
    if kind not in SWEEP_KINDS:
        raise UserError(
            f"{where}: unknown sweep kind {kind!r}; valid kinds: {', '.join(SWEEP_KINDS)}"
        )
    if not isinstance(values, list) or not values:
        raise UserError(f"{where}: {kind} needs a non-empty list")
    values = tuple(_typed(setting, v, where) for v in values)
    if kind in (GRID, "choice"):
        return Dimension(setting, kind, values)
    if len(values) != 2 or not values[0] < values[1]:
        raise UserError(f"{where}: {kind} needs [low, high] with low < high, got {list(values)}")
    numeric = FIELD_TYPES[setting] in (int, float)
    whole = FIELD_TYPES[setting] is int
    if not numeric or (kind.startswith(("int", "log_int")) and not whole):
        raise UserError(f"{where}: {kind} does not fit {setting}; use choice or values")
    if kind in ("uniform", "log_uniform") and whole:
        raise UserError(f"{where}: {setting} is a whole number: use int_uniform or log_int_uniform")
    if kind.startswith("log") and values[0] <= 0:
        raise UserError(f"{where}: {kind} needs a positive low end, got {values[0]}")
    return Dimension(setting, kind, values)


def _no_overlap(fixed: dict, sweep: dict, where: str) -> None:
    both = sorted(set(fixed) & set(sweep))
    if both:
        raise UserError(f"{where}: {', '.join(both)} both fixed and swept; keep one")
