"""Packaging: the wheel, installed into a fresh virtualenv, runs a paper experiment on its own.

A development install (-e) reads the specs and C++ kernels from the checkout, so only a real
wheel shows whether they ship. Takes a few minutes (installs, builds the kernels once).
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lstmbench.sweep.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # as scripts/setup.sh installs it (the CPU build)

# Run inside the installed venv: where the package landed, its data files, and whether the
# kernels build from the installed sources.
INSPECT = """
import json, lstmbench
from pathlib import Path
from lstmbench.model.kernels.native import native_ctc, native_kernel
root = Path(lstmbench.__file__).parent
print(json.dumps({
    "root": str(root),
    "specs": sorted(p.name for p in (root / "sweep" / "specs").glob("*.toml")),
    "kernels": sorted(p.name for p in (root / "model" / "kernels").glob("*.cpp")),
    "native": [native_kernel() is not None, native_ctc() is not None],
}))
"""


def run(command: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.packaging
def test_installed_wheel_ships_the_specs_and_kernels_and_reproduces(tmp_path, mnist_dir):
    # Nothing from the checkout may leak in; a private kernel build folder keeps the
    # installed sources from displacing the checkout's cached build.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path / "torch_extensions")
    # Build from a copy: pip builds in the source tree and would leave build/ in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "lstmbench", source / "lstmbench", ignore=ignore)
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source], tmp_path, env
    )
    [wheel] = dist.glob("lstmbench-*.whl")

    # The fresh venv holds a full torch; pytest keeps the last runs' temporary folders, so
    # the venv is removed when the test ends rather than left to fill the disk.
    venv = tmp_path / "venv"
    try:
        check_installed_wheel(venv, wheel, tmp_path, env, mnist_dir)
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def check_installed_wheel(venv: Path, wheel: Path, tmp_path: Path, env: dict, mnist_dir) -> None:
    run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python, lstmbench = venv / "bin" / "python", venv / "bin" / "lstmbench"
    run([python, "-m", "pip", "install", "-q", "--no-cache-dir", TORCH, wheel], tmp_path, env)

    work = tmp_path / "work"  # outside the checkout, so nothing is found there by accident
    work.mkdir()
    installed = json.loads(run([python, "-c", INSPECT], work, env).stdout)
    assert Path(installed["root"]).is_relative_to(venv)
    assert installed["specs"] == sorted(
        p.name for p in (ROOT / "lstmbench/sweep/specs").glob("*.toml")
    )
    assert installed["kernels"] == ["ctc.cpp", "spec_lstm.cpp"]
    assert installed["native"] == [True, True]

    command = [lstmbench, "reproduce", "--scale", "tiny", "--only", "bidi_ctc_mnist"]
    command += ["--data", mnist_dir, "--workers", "1", "--threads", "1", "--quiet"]
    done = run(command, work, env)
    assert "could not be built" not in done.stdout + done.stderr
    assert (work / "report-tiny" / "report.html").is_file()
    with sqlite3.connect(work / "results-tiny.db") as db:
        statuses = [status for (status,) in db.execute("SELECT status FROM runs")]
    assert statuses and set(statuses) == {"done"}
    assert len(statuses) == len(load_spec("bidi_ctc_mnist").expand("tiny"))
