"""The sweep runner: real sweeps on real MNIST, killed and resumed, failures, the CLI."""

import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lstmbench.cli.main import main
from lstmbench.errors import UserError
from lstmbench.sweep.executors import actor_resources
from lstmbench.sweep.runner import Claims, SweepOptions, register, run_sweep
from lstmbench.sweep.spec import load_spec
from lstmbench.sweep.store import ResultsStore
from lstmbench.training.config import RunConfig
from lstmbench.training.fused import make_tasks, run_work

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name = "{name}"
seed = 5
[fixed]
cell = "{cell}"
direction = "uni"
target = "end"
batch_size = 20
samples = {samples}
eval_every = 100
eval_samples = 100
stuck_evals = 50  # these short runs sit at chance; they must end "done", not "diverged"
[sweep]
hidden = {{ values = {hidden} }}
lr = {{ log_uniform = [1e-3, 1e-1] }}
[scales.tiny]
runs = {runs}
[scales.small]
runs = 2
[scales.paper]
runs = 2
"""

# A plugin cell that breaks for one hidden size, to see a failing run recorded.
PLUGIN = """
import os
import platform
import signal

import torch
from lstmbench.model.cells import RecurrentCell, register_cell


class Fragile(RecurrentCell):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)

    def initial_state(self, batch, like):
        return (like.new_zeros(batch, self.hidden_size),)

    def step(self, x, state):
        if self.hidden_size == 5:
            raise RuntimeError("fragile cell cannot have 5 states")
        if self.hidden_size == 6:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies
        h = torch.tanh(self.linear(torch.cat([x, state[0]], 1)))
        return h, (h,)


register_cell("FRAGILE", Fragile)
"""


def write_spec(tmp_path, name="demo", cell="LSTM", samples=200, runs=4, hidden=(4, 5)):
    path = tmp_path / f"{name}.toml"
    text = SPEC.format(name=name, cell=cell, samples=samples, runs=runs, hidden=list(hidden))
    path.write_text(text)
    return path


def environment(mnist_dir, tmp_path):
    env = dict(os.environ)
    env["LSTMBENCH_MNIST"] = str(mnist_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def sweep_command(spec, db):
    return [sys.executable, "-m", "lstmbench.cli", "sweep", "run", str(spec), "--db", str(db)]


def children(pid: int) -> list[int]:
    """The ids of a process's child processes (Linux)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie, dead but not reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_sweep_resumes_without_repeating_finished_runs(tmp_path, mnist_dir):
    # Runs one at a time and unpacked (a pack finishes all its runs at once), long enough
    # that the kill lands between the third finished run and the last.
    spec = write_spec(tmp_path, samples=1500, runs=8)
    db = tmp_path / "results.db"
    env = environment(mnist_dir, tmp_path)
    command = [*sweep_command(spec, db), "--workers", "1", "--pack", "1", "--quiet"]
    runner = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    done = []
    while time.time() < deadline and len(done) < 3:
        time.sleep(0.1)
        assert runner.poll() is None, runner.stderr.read().decode()
        if db.exists():
            done = ResultsStore(db).runs("demo", "done")
    workers = children(runner.pid)
    assert workers, "the runner should have a worker process"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    time.sleep(2)
    assert not [pid for pid in workers if alive(pid)], "workers outlived the killed runner"
    store = ResultsStore(db)
    before = {r["run_id"]: r for r in store.runs("demo", "done")}
    assert 3 <= len(before) < 8
    assert store.counts("demo")["running"] >= 1  # the runs it was killed in

    rerun = subprocess.run([*command[:-1]], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    runs = store.runs("demo")
    assert len(runs) == 8 and {r["status"] for r in runs} == {"done"}
    for run in runs:
        if run["run_id"] in before:  # finished before the kill: untouched
            assert run["attempts"] == 1
            assert run["finished"] == before[run["run_id"]]["finished"]
        assert len(store.curve(run["run_id"])) == 15  # every 100 of 1,500 samples
    assert max(r["attempts"] for r in runs) == 2  # the interrupted run started again
    assert "8 done" in rerun.stdout and f"{8 - len(before)} runs this time" in rerun.stdout


def start_runners(count, spec, db, env, *options):
    """`count` runners on one results file, one worker of one thread each."""
    command = [*sweep_command(spec, db), "--workers", "1", "--threads", "1", "--quiet", *options]
    return [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]


def finish(runner, timeout=240):
    out, err = runner.communicate(timeout=timeout)
    assert runner.returncode == 0, err
    return out


@pytest.mark.parametrize("pack", [1, 4])
def test_two_runners_on_one_file_share_its_queue(tmp_path, mnist_dir, pack):
    # Twelve runs; with --pack 4 they make four tasks (hidden 4 and 5, six runs each).
    spec = write_spec(tmp_path, samples=200, runs=12)
    db = tmp_path / "results.db"
    runners = start_runners(2, spec, db, environment(mnist_dir, tmp_path), "--pack", str(pack))
    outputs = [finish(runner) for runner in runners]
    runs = ResultsStore(db).runs("demo")
    assert len(runs) == 12 and {r["status"] for r in runs} == {"done"}
    assert [r["attempts"] for r in runs] == [1] * 12  # each run trained once, by one runner
    holders = {f"{platform.node()}:{runner.pid}" for runner in runners}
    assert {r["holder"] for r in runs} == holders  # both runners got a share
    trained = [int(out.split(" runs this time")[0].rsplit(" ", 1)[1]) for out in outputs]
    assert sum(trained) == 12


def test_a_runner_killed_beside_others_loses_no_run(tmp_path, mnist_dir):
    spec = write_spec(tmp_path, samples=1000, runs=12)
    db = tmp_path / "results.db"
    env = environment(mnist_dir, tmp_path)
    victim, *survivors = start_runners(3, spec, db, env, "--pack", "1", "--lease", "60")
    holder = f"{platform.node()}:{victim.pid}"
    deadline = time.time() + 240
    while time.time() < deadline:  # kill it in the middle of a run, with runs left to do
        time.sleep(0.05)
        assert victim.poll() is None, victim.stderr.read()
        runs = ResultsStore(db).runs("demo") if db.exists() else []
        done = [r for r in runs if r["status"] == "done"]
        if len(done) >= 2 and any(r["holder"] == holder for r in runs if r["status"] == "running"):
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    store = ResultsStore(db)
    lost = {r["run_id"] for r in store.runs("demo", "running") if r["holder"] == holder}
    assert lost and store.counts("demo")["queued"] >= 3

    # The survivors see that the holder of those runs has ended and train them too.
    for runner in survivors:
        finish(runner)
    runs = store.runs("demo")
    assert len(runs) == 12 and {r["status"] for r in runs} == {"done"}
    for run in runs:
        assert run["attempts"] == (2 if run["run_id"] in lost else 1), run["run_id"]
        assert run["holder"] != holder or run["run_id"] not in lost
        assert len(store.curve(run["run_id"])) == 10  # every 100 of 1,000 samples


def test_a_run_that_raises_is_stored_as_failed_and_the_sweep_goes_on(tmp_path, mnist_dir):
    (tmp_path / "fragile_cells.py").write_text(PLUGIN)
    spec = write_spec(tmp_path, "fragile", "FRAGILE", samples=100, runs=6, hidden=(4, 5, 6))
    db = tmp_path / "results.db"
    env = environment(mnist_dir, tmp_path)
    command = [*sweep_command(spec, db), "--plugin", "fragile_cells", "--workers", "1"]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 1, finished.stderr
    assert "2 done, 0 diverged, 4 failed" in finished.stdout
    store = ResultsStore(db)
    errors = {run["hidden"]: run["error"] for run in store.runs("fragile", "failed")}
    assert sorted(errors) == [5, 6]
    assert "RuntimeError: fragile cell cannot have 5 states" in errors[5]
    assert "in step" in errors[5]  # where it was raised
    assert "the worker process died" in errors[6]
    assert {r["hidden"] for r in store.runs("fragile", "done")} == {4}
    status = subprocess.run(
        [sys.executable, "-m", "lstmbench.cli", "sweep", "status", "--db", str(db), "--failed"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "6 runs: 2 done, 4 failed" in status.stdout
    assert "fragile cell cannot have 5 states" in status.stdout


def test_sweep_mistakes_end_in_one_message(tmp_path, capsys):
    spec = write_spec(tmp_path, samples=100, runs=2)
    db = tmp_path / "results.db"
    store = ResultsStore(db)
    assert main(["sweep", "run", str(spec), "--db", str(db), "--data", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "stopped: run" in message and "--retry-failed" in message
    assert f"MNIST file train-images-idx3-ubyte(.gz) is missing from {tmp_path}" in message
    assert store.counts("demo")["failed"] >= 1
    assert main(["sweep", "run", str(spec), "--db", str(db), "--scale", "small"]) == 2
    assert "already holds sweep 'demo' at scale 'tiny'" in capsys.readouterr().err
    assert main(["sweep", "status", "--db", str(tmp_path / "none.db")]) == 2
    assert "no results database" in capsys.readouterr().err
    assert main(["sweep", "run", "no_such_spec", "--db", str(db)]) == 2
    assert "lr_hidden" in capsys.readouterr().err
    with pytest.raises(UserError, match="unknown executor 'slurm'; valid executors: local, ray"):
        run_sweep(load_spec(spec), store, SweepOptions(executor="slurm"))


def test_a_gpu_sweep_on_a_machine_without_one_is_refused_before_anything_is_stored(
    tmp_path, capsys
):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal is for machines without one")
    spec = write_spec(tmp_path, samples=100, runs=2)
    db = tmp_path / "results.db"
    assert main(["sweep", "run", str(spec), "--db", str(db), "--device", "cuda"]) == 2
    message = capsys.readouterr().err
    assert "--device cuda: torch sees no GPU on this machine" in message
    assert "--device cpu" in message  # how to fix it
    assert not db.exists()
    assert main(["sweep", "run", str(spec), "--db", str(db), "--device", "tpu"]) == 2
    assert "'tpu' is not cpu, cuda or cuda:N" in capsys.readouterr().err
    # a budget is planned on CPU timings: refused on a GPU, wherever the GPUs are
    address = ["--executor", "ray", "--address", "127.0.0.1:1"]
    command = ["reproduce", "--budget", "5m", "--db", str(db), "--device", "cuda:0", *address]
    assert main(command) == 2
    assert "cannot plan runs on --device cuda:0" in capsys.readouterr().err


def test_no_task_is_dearer_than_a_workers_share(tmp_path):
    # A fused task of K runs takes nearly K times one run: four runs in one task of a pack of
    # 16 would leave the second worker idle, and 600 runs in packs of 16 (60 tasks) 40 of 100.
    def sizes(runs: list[RunConfig], workers: int, pack: int = 16) -> list[int]:
        return [len(task) for task in make_tasks(runs, pack, "cpu", workers)]

    def equal(count: int, **settings) -> list[RunConfig]:
        return [
            RunConfig(hidden=8, samples=100, lr=0.01 + i / 1e5, **settings) for i in range(count)
        ]

    assert sizes(equal(4), 2) == [2, 2]
    assert sizes(equal(600), 100) == [6] * 100
    assert sizes(equal(1000), 2) == [16] * 62 + [8]
    assert sizes(equal(5), 2) == [3, 2] and sizes([], 3) == []
    # BIDI runs are twice the work of LSTM1 runs: a share of a third of 10 + 2 x 10 holds
    # five BIDI runs or ten LSTM1 ones (packs of equal counts, 7, would make tasks of 14 and 7)
    mixed = equal(10, direction="uni") + equal(10, direction="bidi")
    tasks = make_tasks(mixed, 16, "cpu", 3)
    assert [(len(t), t[0].direction) for t in tasks] == [(10, "uni"), (5, "bidi"), (5, "bidi")]
    assert {sum(run_work(c) for c in t) for t in tasks} == {10 * run_work(mixed[0])}
    runs = [RunConfig(hidden=8, samples=100, lr=10.0 ** -(2 + i / 10)) for i in range(4)]
    store = ResultsStore(tmp_path / "results.db")
    pending = register("demo", {"name": "demo"}, runs, store, SweepOptions())
    claims = Claims("demo", store, SweepOptions(pack=16), pending, workers=2)
    assert [len(claims.next_task(idle=True)) for _ in range(2)] == [2, 2]
    assert claims.next_task(idle=True) is None
    # one worker: one task of all four
    store = ResultsStore(tmp_path / "one.db")
    pending = register("demo", {"name": "demo"}, runs, store, SweepOptions())
    assert len(Claims("demo", store, SweepOptions(pack=16), pending, 1).next_task(True)) == 4


def test_on_a_gpu_runs_fuse_up_to_the_pack_and_ray_workers_share_a_gpu():
    small = [
        RunConfig(hidden=500, batch_size=20, lr=10.0 ** -(2 + i / 10), samples=100)
        for i in range(12)
    ]
    # on the CPU such a step is too large to fuse; on a GPU it shares launches all the same
    assert {len(t) for t in make_tasks(small, 16)} == {1}
    assert [len(t) for t in make_tasks(small, 16, "cuda")] == [12]
    lines = [RunConfig(dataset="uw3like:tiny", lr=10.0 ** -(2 + i / 10)) for i in range(3)]
    assert [len(t) for t in make_tasks(lines, 16)] == [1, 1, 1]  # lines alone on the CPU
    assert [len(t) for t in make_tasks(lines, 16, "cuda:1")] == [3]
    assert actor_resources(2, "cpu", 4) == {"num_cpus": 2}
    assert actor_resources(1, "cuda", 4) == {"num_cpus": 1, "num_gpus": 0.25}
