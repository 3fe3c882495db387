"""Training progress: a bar on a terminal, plain lines at intervals in a file or pipe."""

import io

from lstmbench.training import progress
from lstmbench.training.progress import TrainingProgress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_pipe_gets_plain_lines_at_intervals(monkeypatch):
    clock = iter(range(0, 1000, 10))  # each call: 10 s later
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = TrainingProgress(total=1000, enabled=True, stream=stream)
    for _ in range(10):
        bar.update(100)
    bar.evaluated(0.5, 0.25)
    bar.update(0)
    bar.update(0)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # 30 s between lines, 10 s between updates: every third update writes one
    assert lines[:2] == ["300/1000 samples (30%)", "600/1000 samples (60%)"]
    assert lines[-1] == "1000/1000 samples (100%); loss 0.5, test error 25.00%"


def test_a_terminal_gets_a_live_bar_and_disabled_progress_writes_nothing():
    terminal = Terminal()
    bar = TrainingProgress(total=100, enabled=True, stream=terminal)
    bar.update(50)
    bar.close()
    assert "\r" in terminal.getvalue()
    quiet = io.StringIO()
    bar = TrainingProgress(total=100, enabled=False, stream=quiet)
    bar.update(100)
    bar.close()
    assert quiet.getvalue() == ""
