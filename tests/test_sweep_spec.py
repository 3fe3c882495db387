"""Spec files: complete validation before anything runs, and expansion into run configs."""

import math
import tomllib

import pytest

from lstmbench.cli.main import main
from lstmbench.errors import UserError
from lstmbench.sweep.spec import EXPERIMENTS, SCALES, load_spec, parse_spec, spec_names
from lstmbench.training.config import RunConfig

PAPER_SPECS = [
    "lr_hidden",
    "batch_momentum",
    "cell_types_mnist",
    "cell_types_lines",
    "bidi_ctc_mnist",
    "bidi_lines",
    "long_lines",
]
PAPER_RUNS = {"lr_hidden": 660, "batch_momentum": 427, "cell_types_mnist": 2101, "long_lines": 942}


def minimal(**changes) -> dict:
    content = {
        "name": "demo",
        "seed": 3,
        "fixed": {"cell": "LSTM", "direction": "uni", "target": "end", "samples": 100},
        "sweep": {"hidden": {"values": [4, 8, 16]}, "lr": {"log_uniform": [1e-4, 1e-1]}},
        "scales": {"tiny": {"runs": 9}, "small": {"runs": 30}, "paper": {"runs": 300}},
    }
    content.update(changes)
    return content


def test_every_paper_experiment_has_a_valid_spec():
    assert sorted(spec_names()) == sorted(PAPER_SPECS)
    for name in PAPER_SPECS:
        spec = load_spec(EXPERIMENTS / f"{name}.toml")
        assert spec.name == name and spec.description
        for scale in SCALES:
            assert spec.scale(scale).runs >= 1
        if name in PAPER_RUNS:
            assert spec.scale("paper").runs == PAPER_RUNS[name]


def test_tiny_scale_is_small():
    for name in PAPER_SPECS:
        spec = load_spec(name)
        fixed, _ = spec.settings("tiny")
        assert fixed["samples"] <= 400 and 0 < fixed["eval_samples"] <= 200, name
        assert spec.scale("tiny").runs <= 12


def test_grid_and_random_expansion():
    spec = parse_spec(minimal())
    configs = spec.expand("tiny")
    assert len(configs) == 9 and all(isinstance(c, RunConfig) for c in configs)
    assert [c.hidden for c in configs] == [4, 8, 16] * 3
    assert [c.seed for c in configs] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(1e-4 <= c.lr <= 1e-1 and c.cell == "LSTM" for c in configs)
    assert len({c.lr for c in configs}) == 9
    assert [c.run_id for c in configs] == [c.run_id for c in parse_spec(minimal()).expand("tiny")]
    other_seed = parse_spec(minimal(seed=4)).expand("tiny")
    assert [c.lr for c in other_seed] != [c.lr for c in configs]


def test_log_uniform_covers_decades_evenly():
    content = minimal(sweep={"lr": {"log_uniform": [1e-6, 1e-1]}})
    content["scales"]["paper"]["runs"] = 5000
    lrs = [c.lr for c in parse_spec(content).expand("paper")]
    assert 1e-6 <= min(lrs) and max(lrs) <= 1e-1
    per_decade = [sum(10**d <= x < 10 ** (d + 1) for x in lrs) for d in range(-6, -1)]
    assert all(900 <= n <= 1100 for n in per_decade), per_decade


def test_random_kinds_keep_their_types_and_ranges():
    content = minimal(
        sweep={
            "batch_size": {"log_int_uniform": [5, 50]},
            "hidden": {"int_uniform": [3, 6]},
            "momentum": {"uniform": [0.0, 0.99]},
            "output": {"choice": ["softmax", "logistic"]},
        }
    )
    configs = parse_spec(content).expand("small")
    assert all(isinstance(c.batch_size, int) and 5 <= c.batch_size <= 50 for c in configs)
    assert {c.hidden for c in configs} == {3, 4, 5, 6}
    assert all(0.0 <= c.momentum <= 0.99 for c in configs)
    assert {c.output for c in configs} == {"softmax", "logistic"}


def test_scale_overrides_fixed_and_swept_settings():
    content = minimal()
    content["scales"]["tiny"] = {
        "runs": 4,
        "fixed": {"hidden": 5},
        "sweep": {"seed": {"values": [7, 8]}},
    }
    configs = parse_spec(content).expand("tiny")
    assert {c.hidden for c in configs} == {5}
    assert [c.seed for c in configs] == [7, 8, 7, 8]


def test_a_spec_without_scales_runs_as_written_at_every_scale(tmp_path, capsys):
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\n'
        "runs = 6\n"
        "[fixed]\n"
        'cell = "LSTM"\n'
        "samples = 50\n"
        "[sweep]\n"
        "hidden = { values = [4, 8, 16] }\n"
        "lr = { log_uniform = [1e-4, 1e-1] }\n"
    )
    spec = load_spec(tmp_path / "mine.toml")
    assert not spec.scaled
    configs = spec.expand("tiny")
    assert [c.hidden for c in configs] == [4, 8, 16] * 2
    assert [c.seed for c in configs] == [0, 0, 0, 1, 1, 1]
    assert {c.samples for c in configs} == {50} and len({c.lr for c in configs}) == 6
    for scale in SCALES:
        assert [c.run_id for c in spec.expand(scale)] == [c.run_id for c in configs]
    assert main(["sweep", "show", str(tmp_path / "mine.toml"), "--scale", "paper"]) == 0
    assert "6 runs at every scale (the spec has no [scales])" in capsys.readouterr().out


def test_without_scales_or_runs_a_spec_has_one_run_per_grid_point():
    grid = {"hidden": {"values": [4, 8]}, "output": {"values": ["softmax", "logistic"]}}
    content = minimal(sweep=grid)
    del content["scales"]
    assert len(parse_spec(content).expand("paper")) == 4
    assert len(parse_spec({**content, "sweep": {}}).expand("small")) == 1
    with pytest.raises(UserError, match=r"spec: `runs` must be a whole number of at least 1"):
        parse_spec({**content, "runs": 0})


def test_a_spec_with_scales_gives_all_three_and_no_top_level_runs():
    with pytest.raises(
        UserError,
        match=r"missing scale\(s\) paper; give all of tiny, small, paper, or leave out \[scales\]",
    ):
        parse_spec(minimal(scales={"tiny": {"runs": 2}, "small": {"runs": 4}}))
    with pytest.raises(UserError, match=r"top-level `runs` is for a spec without \[scales\]"):
        parse_spec(minimal(runs=5))
    with pytest.raises(UserError, match=r"\[scales\] must hold \[scales.tiny\]"):
        parse_spec(minimal(scales=3))


def test_duplicate_configs_are_one_run():
    content = minimal(sweep={"hidden": {"values": [4, 8]}}, fixed={"seed": 1, "samples": 100})
    assert len(parse_spec(content).expand("tiny")) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hiden": 3}, r"unknown top-level key\(s\) hiden; valid top-level keys: name, descr"),
        ({"fixed": {"learning_rate": 0.1}}, r"unknown run setting\(s\) learning_rate; valid .* lr"),
        ({"fixed": {"cell": "LSMT"}}, r"unknown cell 'LSMT'.*LSTM"),
        ({"fixed": {"hidden": "ten"}}, r"hidden must be int, got 'ten'"),
        ({"fixed": {"momentum": 1.5}}, r"momentum must be in \[0, 1\)"),
        ({"sweep": {"lr": {"loguniform": [1, 2]}}}, r"unknown sweep kind 'loguniform'; valid .*"),
        ({"sweep": {"lr": {"log_uniform": [0.0, 0.1]}}}, r"needs a positive low end"),
        ({"sweep": {"lr": {"uniform": [0.1, 0.01]}}}, r"low < high"),
        ({"sweep": {"hidden": {"uniform": [4, 8]}}}, r"use int_uniform or log_int_uniform"),
        (
            {"sweep": {"output": {"values": ["softmax", "sigmoid"]}}},
            r"unknown output layer 'sigmoid'",
        ),
        ({"sweep": {"cell": {"int_uniform": [1, 3]}}}, r"cell must be str"),
        ({"sweep": {"samples": {"values": [10]}}}, r"samples both fixed and swept"),
        ({"scales": {"tiny": {"runs": 2}}}, r"missing scale\(s\) small, paper"),
        (
            {"scales": {"tiny": {}, "small": {}, "paper": {}, "huge": {}}},
            r"unknown scale\(s\) huge",
        ),
        ({"name": "my sweep"}, r"`name` must be a word"),
    ],
)
def test_mistakes_name_themselves_and_the_valid_choices(change, message):
    with pytest.raises(UserError, match=message):
        parse_spec(minimal(**change))


def test_scale_runs_and_unknown_scale():
    content = minimal()
    content["scales"]["small"] = {"runs": 0}
    with pytest.raises(UserError, match=r"\[scales.small\]: `runs` must be a whole number"):
        parse_spec(content)
    content["scales"]["small"] = {"runs": 3, "speed": 2}
    with pytest.raises(UserError, match=r"unknown key\(s\) speed; valid keys: runs, fixed, sweep"):
        parse_spec(content)
    with pytest.raises(UserError, match="unknown scale 'huge'"):
        parse_spec(minimal()).expand("huge")


def test_files_and_names(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = 'x'\n[fixed\n")
    with pytest.raises(UserError, match="broken.toml is not valid TOML"):
        load_spec(broken)
    with pytest.raises(UserError, match="no spec file nothing.toml.*lr_hidden"):
        load_spec("nothing.toml")
    good = tmp_path / "mine.toml"
    good.write_text((EXPERIMENTS / "lr_hidden.toml").read_text())
    assert load_spec(good).name == "lr_hidden"
    assert tomllib.loads(good.read_text()) == load_spec(good).source


def test_a_dataset_not_yet_provided_is_validated_but_refused_at_expansion():
    content = minimal(fixed={"dataset": "nosuchdata:tiny", "target": "ctc", "samples": 10})
    spec = parse_spec(content)  # the rest of the spec is checked
    with pytest.raises(
        UserError, match="uses dataset 'nosuchdata:tiny'.*available: lines, mnist, uw3like"
    ):
        spec.expand("tiny")
    with pytest.raises(UserError, match="unknown target mode"):
        parse_spec(minimal(fixed={"dataset": "nosuchdata", "target": "nowhere"}))
    assert math.isfinite(parse_spec(minimal()).expand("tiny")[0].lr)


def test_a_budget_protocol_builds_on_the_small_scale_and_says_how_it_departs():
    budget = {
        "fixed": {"hidden": 5, "eval_samples": 40},
        "sweep": {"lr": {"log_uniform": [1e-5, 1e-2]}},
        "evaluations": 12,
        "least_samples": 5000,
        "deviation": "fewer hidden units, to fit",
    }
    spec = parse_spec(minimal(budget=budget))
    protocol = spec.budget
    assert protocol.scale.fixed["hidden"] == 5 and "hidden" not in protocol.scale.sweep
    assert protocol.scale.fixed["target"] == "end"  # the spec's own settings stay
    assert protocol.scale.sweep["lr"].values == (1e-5, 1e-2)
    assert (protocol.evaluations, protocol.least_samples, protocol.eval_samples) == (12, 5000, 40)
    assert protocol.deviation == "fewer hidden units, to fit"
    assert parse_spec(minimal()).budget is None


@pytest.mark.parametrize(
    "budget, message",
    [
        ({"fixed": {"hidden": 5}}, "give `deviation`"),
        ({"deviation": " "}, "give `deviation`"),
        ({"deviation": "x", "evaluations": -1}, "`evaluations` must be a whole number"),
        ({"deviation": "x", "least_samples": 1.5}, "`least_samples` must be a whole number"),
        ({"deviation": "x", "runs": 3}, "unknown key(s) runs"),
        ({"deviation": "x", "fixed": {"hiden": 5}}, "unknown run setting(s) hiden"),
        ({"deviation": "x", "fixed": {"hidden": -5}}, "hidden"),
        ("small", "must be a table"),
    ],
)
def test_a_wrong_budget_protocol_is_one_clear_message(budget, message):
    with pytest.raises(UserError) as error:
        parse_spec(minimal(budget=budget))
    assert message in str(error.value) and "[budget]" in str(error.value)
