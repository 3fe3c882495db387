"""Hyperparameter importance by functional ANOVA (optuna's fANOVA evaluator) over finished runs."""

from __future__ import annotations

import math
import warnings

import numpy as np

from lstmbench.analysis.runs import measured

# Settings that may vary in a sweep, and whether they are searched on a log scale.
NUMERIC = {"lr": True, "hidden": True, "momentum": False, "batch_size": True}
CATEGORICAL = ("cell", "output", "direction", "target")
MIN_RUNS = 8


def importance(runs: list[dict], seed: int = 0) -> dict[str, float]:
    """Share of the variance of log10(best error) each varied setting explains (sums to 1).

    Empty when fewer than MIN_RUNS runs measured an error, or neither settings nor errors vary.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    runs = measured(runs)
    if len(runs) < MIN_RUNS or len({r["best_error"] for r in runs}) < 2:
        return {}
    distributions = {}
    for name, log in NUMERIC.items():
        values = [float(r[name]) for r in runs]
        if min(values) < max(values):
            distributions[name] = FloatDistribution(min(values), max(values), log=log)
    for name in CATEGORICAL:
        choices = sorted({str(r[name]) for r in runs})
        if len(choices) > 1:
            distributions[name] = CategoricalDistribution(choices)
    if not distributions:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for run in runs:
        params = {
            name: str(run[name]) if name in CATEGORICAL else float(run[name])
            for name in distributions
        }
        value = math.log10(max(run["best_error"], 1e-4))
        study.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=value)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna flags its evaluators as experimental
        found = get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed), normalize=True
        )
    return {name: float(np.round(value, 4)) for name, value in found.items()}
