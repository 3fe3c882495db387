"""`lstmbench bench`: the grid, the FLOP count, the memory meter, and the command end to end
(on tiny sizes; nothing here asserts a speed)."""

import json
import sys

import pytest
import torch

from lstmbench.bench import fused_runs
from lstmbench.bench import speed as bench
from lstmbench.cli.main import main
from lstmbench.errors import UserError


def test_grid_puts_the_baseline_first_at_every_size():
    cases = bench.build_cases(["NPLSTM", "gru"], ["mnist"], ["uni", "bidi"], [1, 32], [8], True)
    assert len(cases) == 2 * 2 * 4
    for start in range(0, len(cases), 4):
        group = cases[start : start + 4]
        assert [c.cell for c in group] == [bench.BASELINE, "NPLSTM", "GRU", bench.REFERENCE_CELL]
        assert [c.impl for c in group] == ["torch", "fast", "fast", "reference"]
        assert len({(c.direction, c.batch, c.hidden) for c in group}) == 1


@pytest.mark.parametrize(
    "cells, shapes, directions, batches, match",
    [
        (["NOSUCHCELL"], ["mnist"], ["uni"], [1], "unknown cell 'NOSUCHCELL'"),
        (["LSTM"], ["page"], ["uni"], [1], "unknown shape 'page'"),
        (["LSTM"], ["mnist"], ["sideways"], [1], "unknown direction 'sideways'"),
        (["LSTM"], ["mnist"], ["uni"], [0], "at least 1"),
    ],
)
def test_grid_refuses_bad_choices(cells, shapes, directions, batches, match):
    with pytest.raises(UserError, match=match):
        bench.build_cases(cells, shapes, directions, batches, [8], True)


def test_list_option_that_does_not_parse_is_named():
    with pytest.raises(UserError, match="--batches '1,x'"):
        bench.parse_list("1,x", int, "batches")


def test_flop_count_is_the_same_for_nn_lstm_and_the_equivalent_cell():
    nplstm, baseline = (
        bench.Case(cell, impl, bench.SHAPES["mnist"], "bidi", 4, 10)
        for cell, impl in (("NPLSTM", "fast"), (bench.BASELINE, "torch"))
    )
    per_step = 2 * (4 * 10 * (28 + 10)) + 2 * 10 * 11  # two directions, then the classifier
    assert bench.matrix_flops(nplstm) == bench.matrix_flops(baseline) == 6 * per_step * 28 * 4


@pytest.mark.skipif(sys.platform != "linux", reason="the CPU memory meter reads /proc")
def test_memory_meter_sees_a_tensor_of_known_size():
    assert bench.cpu_memory_phase(True)
    try:
        size = 4_000_000  # 16 MB of float32, alive at once with its sum

        def step():
            torch.ones(size).sum()

        step()  # first use maps library code, which the resident set counts too
        measured = bench.peak_memory(step, "cpu")
    finally:
        bench.cpu_memory_phase(False)
    assert measured == pytest.approx(4 * size / 1e6, rel=0.1)


def test_bench_rows_compare_with_the_baseline_of_their_size():
    cases = bench.build_cases(["NPLSTM"], ["mnist"], ["bidi"], [2], [8], True)
    facts, rows = bench.run_bench(cases, min_time=0.0, min_repeats=1)
    assert facts["sgemm_gflops"] > 0 and facts["threads"] >= 1
    assert [(r.cell, r.kernel) for r in rows] == [
        (bench.BASELINE, "mkldnn"),
        ("NPLSTM", "native"),
        ("NPLSTM", "loop"),
    ]
    baseline = rows[0]
    assert baseline.ratio == 1.0
    for row in rows:
        assert row.samples_per_s > 0 and row.gflops > 0
        assert row.ratio == pytest.approx(row.samples_per_s / baseline.samples_per_s)
        assert row.peak_percent == pytest.approx(100 * row.gflops / facts["sgemm_gflops"])
        assert row.step_ms == pytest.approx(1e3 * row.batch / row.samples_per_s)


def test_command_prints_the_table_and_writes_json(tmp_path, capsys):
    output = tmp_path / "bench.json"
    status = main(
        [
            "bench",
            "--cells", "LINLSTM",
            "--shapes", "mnist",
            "--directions", "uni",
            "--batches", "1",
            "--hidden", "100",
            "--min-time", "0",
            "--repeats", "1",
            "--fused-runs", "3",
            "--json", str(output),
        ]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert bench.HEADER in printed and "LINLSTM" in printed
    document = json.loads(output.read_text())
    assert document["complete"] is True
    [fused] = document["fused_runs"]  # one shape, direction and size
    assert (fused["runs"], fused["hidden"], fused["direction"]) == (3, 100, "uni")
    assert fused["ratio"] == pytest.approx(
        fused["fused_steps_per_s"] / fused["baseline_steps_per_s"]
    )
    assert fused_runs.HEADER in printed
    assert [row["cell"] for row in document["rows"]] == [bench.BASELINE, "LINLSTM", "NPLSTM"]
    # no figure from another machine is printed beside the rows (clstm is compared in
    # benchmarks/clstm_compare.py, on the same machine, interleaved)
    assert not any("clstm" in key for row in document["rows"] for key in row)


def test_a_fused_runs_step_trains_every_run_on_its_own_sample():
    torch.manual_seed(0)
    group, batches = fused_runs.fused_group(3, bench.SHAPES["mnist"], "bidi", 5, "cpu")
    assert len({id(b) for b in batches[0]}) == 3  # a batch apiece
    before = [p.detach().clone() for p in group.params]
    [losses] = group.steps(batches, [0, 1, 2])
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    for old, new in zip(before, group.params, strict=True):
        if new.numel():  # (NPLSTM's peephole weights are empty)
            changed = (old - new).flatten(1).abs().amax(dim=1)  # per run (stacked first)
            assert bool((changed > 0).all())  # every run of the group was updated


def test_command_refuses_an_unknown_cell_in_one_message(tmp_path, capsys):
    status = main(["bench", "--cells", "NOSUCH", "--json", str(tmp_path / "b.json")])
    assert status == 2
    error = capsys.readouterr().err
    assert "unknown cell 'NOSUCH'" in error and "Traceback" not in error


def test_command_refuses_a_json_path_in_a_missing_folder(tmp_path, capsys):
    status = main(["bench", "--quick", "--json", str(tmp_path / "no" / "b.json")])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err
