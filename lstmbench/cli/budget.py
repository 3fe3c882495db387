"""`lstmbench reproduce --budget DURATION`: calibrate, plan, pilot, rounds, report.

The planning itself is sweep/budget.py, the pilot's band analysis/pilot.py, the runs still
needed analysis/power.py; this module runs them in order against one results database and
keeps the plan file up to date after every step, so that the same command resumes. What the
budget is spent on is a Work: the paper's experiments here, a cell comparison for
`compare --budget` (cli/compare_budget.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstmbench.analysis.findings import DECIDED, Finding, undecided_tests
from lstmbench.analysis.paper import EXPERIMENTS, evaluate, read_experiments
from lstmbench.analysis.pilot import NEVER_LEARNED, choose_band, refine_lrs, refined_band
from lstmbench.analysis.power import Need, claim_core_seconds, format_needs, runs_needed
from lstmbench.analysis.runs import pilot_sweep_name
from lstmbench.analysis.stats import informative
from lstmbench.cli.options import data_for, sweep_options
from lstmbench.errors import UserError
from lstmbench.sweep.budget import (
    BUDGET_SCALE,
    DEFAULT_SPECS,
    MAX_ROUNDS,
    REPORT_SECONDS,
    ROUND_SHARES,
    STOPPED,
    Cost,
    ExperimentPlan,
    GroupPlan,
    Plan,
    admit_deferred,
    allocate_round,
    base_scale,
    budget_for,
    calibration_spec,
    choose_lengths,
    effective_run_seconds,
    eval_samples,
    evaluations,
    extend_plan,
    format_duration,
    format_plan,
    group_label,
    in_group,
    least_samples,
    load_plan,
    lr_groups,
    main_configs,
    paper_lr_range,
    parse_duration,
    pilot_configs,
    pilot_lrs,
    plan_path,
    round_core_seconds,
    round_runs,
    run_cost,
    unrun_reasons,
    usable_core_seconds,
)

# A top-up round leaves out an open claim whose power calculation asks for runs costing more
# than REACH times what the round can spend: projected from a few runs, that figure can be
# off several-fold, but a claim asking for tens of times the budget left will not be decided
# by it, and its runs would be taken from claims that may.
REACH = 3.0
CALIBRATION_SAMPLES = 10_000  # a nominal run length: only the per-sample times are used
PAPER_TIMING_STEPS = 10  # steps a group of the paper's protocol is timed on, where one is


class Clock:
    """Wall time this plan has spent, over this and earlier invocations."""

    def __init__(self, plan_spent: float):
        self.before, self.start = plan_spent, time.monotonic()

    def spent(self) -> float:
        return self.before + time.monotonic() - self.start

    def left(self, budget: float) -> float:
        return budget - self.spent()


@dataclass(frozen=True)
class Work:
    """What a budget is spent on."""

    specs: dict  # name -> Spec, planned in this order
    claims: dict[str, int]  # name -> claims its runs test: the cheapest claims go first
    # The verdicts, from the results store; a finding's sweep names its spec, whose rounds
    # stop once all its findings are decided (findings.DECIDED).
    findings: Callable[[object], list[Finding]]
    resume: str = "--budget and --only"  # the options a plan for other specs was made with
    # More timing once the specs are calibrated, as plan_timed(plan, options): kept in the
    # plan, so a resumed plan does not time again.
    plan_timed: Callable | None = None
    # The specs whose claims compare groups each at its best rate: their pilots refine.
    refined: frozenset[str] = frozenset()


def paper_work(names: list[str]) -> Work:
    """The paper's experiments of these specs, tested by their claims in paper.py."""
    from lstmbench.sweep.spec import load_spec

    keys = [c.key for e in EXPERIMENTS if e.spec in names for c in e.claims]
    return Work(
        specs={name: load_spec(name) for name in names},
        claims={n: sum(len(e.claims) for e in EXPERIMENTS if e.spec == n) for n in names},
        findings=lambda store: evaluate(read_experiments(store), keys),
        refined=frozenset(e.spec for e in EXPERIMENTS if e.spec in names and e.at_best),
    )


def reproduce_budget(args: argparse.Namespace, store) -> tuple[list[str], dict]:
    """Run the paper's experiments into `store` to fit a time budget; returns the problems
    met and what the plan adds to the report (report_parts)."""
    from lstmbench.model.cells import load_plugins

    load_plugins(args.plugin)
    problems, plan = run_budget(paper_work(list(args.only or DEFAULT_SPECS)), args, store)
    return problems, report_parts(plan)


def report_parts(plan: Plan) -> dict:
    """What a budget's plan adds to its report, as write_report's arguments: its sections
    (a function of the findings), and why it made no runs of the experiments it deferred."""
    return {
        "sections": lambda findings: report_sections(plan, findings),
        "unrun": unrun_reasons(plan),
    }


def run_budget(work: Work, args: argparse.Namespace, store) -> tuple[list[str], Plan]:
    """Spend the budget of the command line (--budget and the sweep runner's options) on
    `work`, into `store`: calibrate and plan (or resume the plan beside the store), pilot,
    rounds. Returns the problems met and the plan as it ended."""
    from lstmbench.model.kernels.native import native_ctc, native_kernel
    from lstmbench.sweep.executors import cpu_count, threads_per_worker
    from lstmbench.sweep.runner import make_executor

    budget = parse_duration(args.budget)
    names, specs = list(work.specs), work.specs
    options = dataclasses.replace(sweep_options(args), scale=BUDGET_SCALE)
    if options.device != "cpu":
        raise UserError(
            f"--budget plans on timings of the CPU, so it cannot plan runs on --device "
            f"{options.device} yet; leave --device out, or run the specs on the GPU with "
            "`lstmbench sweep run SPEC --device cuda`"
        )
    workers = options.workers or cpu_count()
    threads = options.threads or threads_per_worker(workers)
    options = dataclasses.replace(options, workers=workers, threads=threads)
    path = plan_path(store.path)
    plan = load_plan(path, budget, names, work.resume)
    if plan is not None and budget > plan.budget:
        print(
            f"extending the plan in {path} from {format_duration(plan.budget)} to "
            f"{format_duration(budget)}: its run lengths and learning-rate bands stay; the "
            "time added goes to top-ups for the claims still open",
            flush=True,
        )
        extend_plan(plan, budget)
    # The C++ kernels are built once per installation (a minute or more): a cost of setting
    # up, not of the experiments, and in a short budget it would leave no time to plan runs.
    native_kernel()
    native_ctc()
    clock = Clock(plan.spent if plan else 0.0)

    def save() -> None:
        plan.spent = clock.spent()
        plan.save(path)

    if plan is None:
        plan = Plan(budget, workers, threads, names)
        calibrate(plan, specs, work, options)
        if work.plan_timed is not None:
            started = time.monotonic()
            work.plan_timed(plan, options)
            plan.calibration_seconds += time.monotonic() - started
        choose_lengths(plan, usable_core_seconds(plan, clock.left(budget) - REPORT_SECONDS))
        save()
        print(f"plan written to {path}:\n{format_plan(plan)}", flush=True)
    else:
        print(f"resuming the plan in {path} ({format_duration(plan.spent)} spent)", flush=True)
    problems: list[str] = []
    executor = make_executor(options)
    try:
        run_pilot(plan, specs, store, options, executor, problems)
        save()
        # the rounds it has (a resumed or extended plan's), then up to MAX_ROUNDS more
        for number in range(1, len(plan.rounds) + MAX_ROUNDS + 1):
            if number <= len(plan.rounds) and plan.rounds[number - 1].done:
                continue  # a resumed plan's finished round
            still = {}
            if len(plan.rounds) < number:  # a resumed plan's allocated round goes on as it was
                top_up = number > len(ROUND_SHARES)
                still = admit(plan, work, store, options, executor, clock, problems, top_up)
                save()
            trained = run_round(
                plan, number, work, store, options, executor, clock, problems, still
            )
            save()
            if not trained and number >= len(ROUND_SHARES):
                break  # the shared rounds are over and what is left pays for no run more
    finally:
        executor.shutdown()
        save()
    print(format_plan(plan), flush=True)
    return problems, plan


def calibrate(plan: Plan, specs: dict, work: Work, options) -> None:
    """Time each experiment's configuration groups (estimate.py) and set its cost per run."""
    from lstmbench.sweep.estimate import NOT_SPEED, EstimateOptions, estimate_spec

    started = time.monotonic()
    for name, spec in specs.items():
        groups = [GroupPlan(key, group_label(key)) for key in lr_groups(spec)]
        experiment = ExperimentPlan(
            name,
            least=least_samples(spec),
            claims=work.claims[name],
            groups=groups,
            refine=name in work.refined,
        )
        plan.experiments.append(experiment)
        print(f"calibrating {name}", flush=True)
        timing = EstimateOptions(
            scale=BUDGET_SCALE,
            pack=2,
            workers=plan.workers,
            threads=plan.threads,
            steps=30,
            repeats=1,
            data_path=data_path_of(spec, options),
        )
        try:
            estimate = estimate_spec(calibration_spec(spec, CALIBRATION_SAMPLES), timing)
        except UserError as error:
            experiment.note = f"not run: calibration failed: {error}"
            continue
        if spec.budget is not None:
            experiment.deviation = spec.budget.deviation
        experiment.timings = [
            {
                "settings": {k: v for k, v in g.timed.to_dict().items() if k not in NOT_SPEED},
                "train_sample": g.fused * plan.threads,
                "eval_sample": g.eval_sample * plan.threads,
            }
            for g in estimate.groups
        ]
        weights = [len(g.runs) for g in estimate.groups]
        experiment.cost = Cost(
            train_sample=float(np.average([g.fused for g in estimate.groups], weights=weights))
            * plan.threads,
            eval_sample=float(np.average([g.eval_sample for g in estimate.groups], weights=weights))
            * plan.threads,
            evaluations=evaluations(spec),
            eval_samples=eval_samples(spec),
        )
    plan.calibration_seconds = time.monotonic() - started


def paper_cost(spec, plan: Plan, data_path: str | None = None) -> dict:
    """What the paper's protocol of an experiment would cost here, where the budget runs
    another: its paper scale timed briefly (estimate.py), in core-hours and in wall hours on
    the estimate's Ray workers. Timed only for experiments the budget runs."""
    from lstmbench.sweep.estimate import EstimateOptions, estimate_spec

    brief = EstimateOptions(
        scale="paper",
        workers=plan.workers,
        threads=plan.threads,
        steps=PAPER_TIMING_STEPS,
        repeats=1,
        data_path=data_path,
    )
    try:
        estimate = estimate_spec(spec, brief)
    except (UserError, RuntimeError) as error:  # the budget's own runs go on without it
        return {"error": str(error)}
    return {
        "runs": len(estimate.configs),
        "core_hours": estimate.core_hours("fused"),
        "ray_workers": brief.ray_workers,
        "ray_wall_hours": estimate.wall_hours("fused", brief.ray_workers),
    }


def dataset_of(spec, paper: bool = False) -> str:
    """The dataset the experiment's budgeted runs (or, with paper, the paper's) read."""
    return (spec.fixed if paper else base_scale(spec).fixed).get("dataset", "mnist")


def data_path_of(spec, options, paper: bool = False) -> str | None:
    """The --data folder for the experiment's budgeted runs (or, with paper, the paper's):
    the MNIST folder where they read MNIST (data_for), else None."""
    return data_for({dataset_of(spec, paper)}, options).data_path


def admit(
    plan: Plan, work: Work, store, options, executor, clock, problems: list, top_up: bool = False
) -> dict:
    """Plan the deferred experiments that now fit (admit_deferred), and train their pilots.
    Returns the open claims of each experiment (open_experiments), for the round; before a
    top-up round, only the claims within its reach (REACH)."""
    spendable = round_core_seconds(plan, clock.left(plan.budget) - REPORT_SECONDS)
    still = open_experiments(plan, work, store, REACH * spendable if top_up else None)
    admitted = admit_deferred(plan, spendable, still)
    if admitted:
        print(f"at the measured speed {', '.join(admitted)} fit as well", flush=True)
        run_pilot(plan, work.specs, store, options, executor, problems)
    return still


def _train(
    name: str, source: dict, configs: list, spec, store, options, executor, plan, experiment
) -> None:
    """Queue the runs in a sweep (those it holds are kept) and train the pending ones; their
    wall time and calibration's prediction for them go to the experiment's speed."""
    from lstmbench.sweep.runner import execute, register

    spec_options = data_for({dataset_of(spec)}, options)
    pending = register(name, source, configs, store, spec_options)
    started = time.monotonic()
    execute(name, pending, store, spec_options, executor)
    experiment.measured_seconds += (time.monotonic() - started) * plan.cores
    experiment.predicted_seconds += sum(run_cost(experiment, c) for c in pending)


def run_pilot(plan: Plan, specs: dict, store, options, executor, problems: list) -> None:
    """Train every group's pilot (once; a resumed plan only finishes it) and choose bands:
    the first stage across the paper's range, then, where the experiment refines, the second
    stage around each group's best rate."""
    started = time.monotonic()
    for experiment in plan.experiments:
        if not experiment.planned or all(g.band is not None for g in experiment.groups):
            continue
        spec = specs[experiment.spec]
        if experiment.deviation and not experiment.paper_cost:
            print(f"timing the paper's protocol of {spec.name}", flush=True)
            timing = time.monotonic()
            data = data_path_of(spec, options, paper=True)
            experiment.paper_cost = paper_cost(spec, plan, data)
            # Calibration, not pilot: the pilot's time is set against its predicted cost.
            spent = time.monotonic() - timing
            plan.calibration_seconds += spent
            started += spent
        paper_range = paper_lr_range(spec)
        first = _pilot_stage(experiment, spec, None, store, options, executor, problems, plan)
        if first is None:
            continue
        second = {}
        if experiment.refine:
            lrs = {i: refine_lrs(runs, paper_range) for i, runs in first.items()}
            second = _pilot_stage(experiment, spec, lrs, store, options, executor, problems, plan)
            if second is None:
                continue
        for index, group in enumerate(experiment.groups):
            if experiment.refine:
                both = first[index] + second.get(index, [])
                band, tried, why = refined_band(both, pilot_lrs(spec), paper_range)
            else:
                band, tried, why = choose_band(first[index], paper_range)
            group.band, group.pilot, group.band_note = list(band), tried, why
            group.learned_in_pilot = not why.startswith(NEVER_LEARNED)
    plan.pilot_seconds += time.monotonic() - started


def _pilot_stage(
    experiment: ExperimentPlan, spec, lrs: dict | None, store, options, executor, problems, plan
) -> dict | None:
    """Train one pilot stage: the first across the paper's range (`lrs` None), or the given
    rates per group index. Returns each group's finished runs, or None if training failed."""
    sweep = pilot_sweep_name(spec.name)
    configs = {
        i: pilot_configs(spec, i, g.key, experiment.samples, None if lrs is None else lrs[i])
        for i, g in enumerate(experiment.groups)
        if lrs is None or lrs[i]
    }
    every = [c for group in configs.values() for c in group]
    if not every:
        return {}
    stage = "pilot" if lrs is None else "second stage of the pilot"
    print(f"{stage} of {spec.name}: {len(every)} runs", flush=True)
    source = {"name": sweep, "description": f"learning-rate pilot of {spec.name}"}
    try:
        _train(sweep, source, every, spec, store, options, executor, plan, experiment)
    except UserError as error:
        problems.append(str(error))
        return None
    runs = {r["run_id"]: r for r in store.runs(sweep)}
    return {i: [runs[c.run_id] for c in group if c.run_id in runs] for i, group in configs.items()}


def open_experiments(plan: Plan, work: Work, store, reach: float | None = None) -> dict[str, int]:
    """Each experiment with claims not decided yet, and how many; the verdicts, and which
    groups an open claim still reads, go in the plan. Given `reach` (core-seconds), a claim
    whose further runs (analysis/power.py, at the experiment's measured cost) cost more is
    left out, and noted in ExperimentPlan.beyond_reach."""
    findings = work.findings(store)
    still = {}
    for experiment in plan.experiments:
        own = [f for f in findings if f.sweep == experiment.spec]
        experiment.verdicts = {f.key: f.verdict for f in own}
        experiment.beyond_reach, experiment.asks = {}, {}
        if reach is not None and experiment.planned:
            run_seconds = effective_run_seconds(plan, experiment)
            needs = claim_core_seconds(runs_needed(own, {experiment.spec: run_seconds}))
            experiment.beyond_reach = {k: v for k, v in needs.items() if v > reach}
            own = [f for f in own if f.key not in experiment.beyond_reach]
            experiment.asks = {
                f.key: math.ceil(needs[f.key] / (run_seconds * len(compared_groups(experiment, f))))
                for f in own
                if f.verdict not in DECIDED and needs.get(f.key, 0) > 0
            }
        mark_wanted(experiment, own)
        undecided = sum(f.verdict not in DECIDED for f in own)
        if undecided:
            still[experiment.spec] = undecided
    return still


def compared_groups(experiment: ExperimentPlan, finding: Finding) -> list[GroupPlan]:
    """The groups of the runs an open claim's undecided comparisons compare, in the strata
    where more runs inform the test (stats.informative): where nearly every run of both
    sides failed (an output layer on which neither learned), more runs of the same length
    would mostly fail too, and tie. A claim with no test yet, or one about how the error
    changes with a setting rather than a comparison of two groups of runs, reads every
    group."""
    undecided = undecided_tests(finding)
    if not undecided or any(t.runs is None for t in undecided):
        return list(experiment.groups)
    runs = [
        run
        for t in undecided
        for side, keep in zip(t.runs, informative(*t.values, t.strata), strict=True)
        for run, kept in zip(side, keep, strict=True)
        if kept
    ]
    compared = [g for g in experiment.groups if any(in_group(g.key, run) for run in runs)]
    return compared or list(experiment.groups)


def mark_wanted(experiment: ExperimentPlan, findings: list[Finding]) -> None:
    """Mark the groups an open claim of the experiment still reads (GroupPlan.wanted); every
    group where no claim is open."""
    wanted = {
        id(group)
        for finding in findings
        if finding.verdict not in DECIDED
        for group in compared_groups(experiment, finding)
    }
    for group in experiment.groups:
        group.wanted = not wanted or id(group) in wanted


def run_round(
    plan: Plan, number: int, work: Work, store, options, executor, clock, problems, still: dict
) -> bool:
    """Allocate round `number` (unless a resumed plan has it) among the open claims `still`
    (open_experiments) and train its runs; returns whether it added any. The shared rounds
    take ROUND_SHARES of the time left, a top-up round all of it; a top-up that pays for
    nothing is not kept."""
    if len(plan.rounds) < number:
        left = clock.left(plan.budget) - REPORT_SECONDS
        shares = ROUND_SHARES[number - 1 :]
        share = shares[0] / sum(shares) if shares else 1.0
        core_seconds = round_core_seconds(plan, left * share)
        round_ = allocate_round(plan, number, core_seconds, still)
        round_.beyond_reach = [
            f"{e.spec} {claim} (its runs needed: {_core_hours_text(seconds)})"
            for e in plan.experiments
            for claim, seconds in e.beyond_reach.items()
        ]
        planned = any(e.planned for e in plan.experiments)
        if not round_.added and (number > len(ROUND_SHARES) or not planned):
            note = stop_note(left, core_seconds, round_.beyond_reach)
            if note and not any(n.startswith(STOPPED) for n in plan.notes):
                plan.notes.append(note)  # once: a resumed plan stops here again
            return False
        plan.rounds.append(round_)
        print(
            f"round {number}: {core_seconds / 3600:.2g} core-hours; "
            + (
                ", ".join(
                    f"{k} +{round_runs(round_, plan.experiment(k))}/group" for k in round_.added
                )
                or "nothing to add"
            ),
            flush=True,
        )
    round_ = plan.rounds[number - 1]
    if round_.done:
        return bool(round_.added)
    started = time.monotonic()
    for experiment in plan.experiments:
        if not experiment.planned or not any(g.runs for g in experiment.groups):
            continue
        spec = work.specs[experiment.spec]
        configs = [
            c
            for i, g in enumerate(experiment.groups)
            for c in main_configs(spec, i, g.key, tuple(g.band), g.runs, experiment.samples)
        ]
        print(f"round {number}, {spec.name}: {len(configs)} runs in all", flush=True)
        try:
            _train(
                spec.name, spec.source, configs, spec, store, options, executor, plan, experiment
            )
        except UserError as error:
            problems.append(str(error))
    round_.wall_seconds += time.monotonic() - started
    round_.done = True
    open_experiments(plan, work, store)  # the verdicts after the round, for the plan file
    return bool(round_.added)


def stop_note(left: float, core_seconds: float, beyond_reach: list[str]) -> str | None:
    """Why the top-ups stopped while time was left: the claims still open need far more runs
    than it pays for. None when nothing was left out, or the budget was spent (then every
    claim is out of reach, and not for its cost)."""
    if not beyond_reach or left <= 0:
        return None
    return (
        f"{STOPPED} with {format_duration(left)} left: the open claims need far more runs "
        f"than that pays for ({core_seconds / 3600:.2g} core-hours): {', '.join(beyond_reach)}"
    )


def _core_hours_text(seconds: float) -> str:
    return (
        "no count of runs decides it" if math.isinf(seconds) else f"{seconds / 3600:.2g} core-hours"
    )


def report_sections(plan: Plan, findings) -> list[tuple[str, str]]:
    """The plan, the pilot and the runs still needed, for the report."""
    pilot = []
    for experiment in plan.experiments:
        for group in experiment.groups:
            if group.band is None:
                continue
            tried = ", ".join(
                f"{t['lr']:.2g}{' learned' if t['outcome'] == 'learned' else ''}"
                for t in group.pilot
            )
            pilot.append(
                f"{experiment.spec} [{group.label}]: tried {tried}; band "
                f"{group.band[0]:.2g}-{group.band[1]:.2g} ({group.band_note})"
            )
    planned = {e.spec for e in plan.experiments if e.planned}
    # at the speed measured here: "compute at the measured speed"
    seconds = {e.spec: effective_run_seconds(plan, e) for e in plan.experiments if e.planned}
    planned_findings = [f for f in findings if f.sweep in planned]
    sized = runs_needed(planned_findings, seconds)
    needs = format_needs(planned_findings, sized)
    more = extension_text(plan, sized)
    if more:
        needs += "\n" + more
    deferred = [f"{e.spec}: {e.note}" for e in plan.experiments if not e.planned]
    if deferred:
        needs += "\nnot run in this budget (its claims have no data):\n" + "\n".join(deferred)
    sections = [
        ("Budget plan", format_plan(plan)),
        (
            "Learning-rate pilot",
            "Per learning-rate group, the rates tried at the planned run length, which "
            "learned (best error at most half of chance), and the band the main runs drew "
            "from (the paper's range, cut where no rate learned):\n" + "\n".join(pilot),
        ),
        ("Runs needed to decide the open claims", needs),
    ]
    deviations = [_deviation_text(e) for e in plan.experiments if e.deviation and e.planned]
    if deviations:
        sections.append(
            ("Where the budget's protocol departs from the paper's", "\n".join(deviations))
        )
    return sections


def extension_text(plan: Plan, needs: list[Need]) -> str | None:
    """How to pay here for the runs the open claims need (`needs`, from runs_needed): the
    budget that extends this plan by their core-hours (extend_plan); None where no claim is
    sized."""
    seconds = claim_core_seconds(needs)
    sized = {claim: s for claim, s in seconds.items() if 0 < s < math.inf}
    if not sized:
        return None
    budget = budget_for(plan, sum(sized.values()))
    return (
        f"to train them here, run the same command with --budget {format_duration(budget)} "
        f"(now {format_duration(plan.budget)}) and the same --db: the plan is extended, its "
        f"runs kept, and the {format_duration(budget - plan.budget)} added go to top-ups "
        f"that pay these runs first ({', '.join(sorted(sized))}; claims of one experiment "
        "may share runs, so less time may do)"
    )


def _deviation_text(experiment: ExperimentPlan) -> str:
    """An experiment's departure from the paper's protocol, and what the paper's would cost."""
    cost = experiment.paper_cost
    if "core_hours" in cost:
        paper = (
            f"the paper's protocol, {cost['runs']:,} runs, measured here: "
            f"{cost['core_hours']:,.0f} core-hours, {cost['ray_wall_hours']:,.1f} hours on "
            f"{cost['ray_workers']} Ray workers"
        )
    else:
        paper = f"the paper's protocol could not be timed: {cost.get('error', 'not timed')}"
    return f"{experiment.spec}: {experiment.deviation}; {paper}"
