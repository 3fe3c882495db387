"""Training-step speed and memory of every recurrence implementation against torch's nn.LSTM.

Each row times one training step (forward, backward, SGD with momentum) of a recurrent layer
(uni- or bidirectional) under a linear output layer with per-frame cross-entropy, on random
data of a fixed shape. nn.LSTM (MKL-DNN on the CPU, cuDNN on CUDA) is the baseline, measured
in the same run, and so is the machine's sgemm rate, against which GFLOP/s are put; both are
timed in turns with the rows of each size.
"""

from __future__ import annotations

import ctypes
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from lstmbench.errors import UserError
from lstmbench.model import kernels as backends
from lstmbench.model.cells import PAPER_PRESETS, get_cell
from lstmbench.model.nets import SequenceNet

BASELINE = "nn.LSTM"
PAPER_TYPES = tuple(PAPER_PRESETS)
DEFAULT_CELLS = (*PAPER_TYPES, "GRU")
REFERENCE_CELL = "NPLSTM"


@dataclass(frozen=True)
class Shape:
    """An input shape: time steps, features per step, output classes."""

    name: str
    steps: int
    features: int
    classes: int


SHAPES = {
    "mnist": Shape("mnist", 28, 28, 11),
    # A text line: about 800 columns of a 48-pixel-high image, a hundred-odd characters.
    "line": Shape("line", 800, 48, 100),
}


@dataclass(frozen=True)
class Case:
    """One row of the table: an implementation at one size."""

    cell: str  # BASELINE, a registered cell name
    impl: str  # "torch" for the baseline, else the network's impl: fast | reference
    shape: Shape
    direction: str
    batch: int
    hidden: int


@dataclass
class Row:
    """What was measured for a case."""

    cell: str
    impl: str
    kernel: str  # what runs the recurrence: mkldnn/cudnn, native (C++), generic, loop
    shape: str
    direction: str
    batch: int
    hidden: int
    samples_per_s: float
    step_ms: float
    ratio: float  # samples/s over the baseline's at the same size (nan without a baseline)
    gflops: float
    peak_percent: float  # of the sgemm rate timed in turns with the rows of this size
    peak_memory_mb: float | None
    memory_ratio: float | None


def parse_list(text: str, kind: type, name: str) -> list:
    """A comma-separated option value as a list, refusing what does not parse."""
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(
            f"--{name} {text!r}: expected a comma-separated list of {kind.__name__}"
        ) from None


def build_cases(
    cells: Iterable[str],
    shapes: Iterable[str],
    directions: Iterable[str],
    batches: Iterable[int],
    hiddens: Iterable[int],
    reference: bool,
) -> list[Case]:
    """The grid: for each size, the baseline first, then each cell, then the reference."""
    for name in cells:
        get_cell(name)  # an unknown name fails before anything is measured
    for name in shapes:
        if name not in SHAPES:
            raise UserError(f"unknown shape {name!r}; valid shapes: {', '.join(SHAPES)}")
    for direction in directions:
        if direction not in ("uni", "bidi"):
            raise UserError(f"unknown direction {direction!r}; valid directions: uni, bidi")
    for value in (*batches, *hiddens):
        if value < 1:
            raise UserError(f"batch sizes and hidden sizes must be at least 1, got {value}")
    cases = []
    for shape in shapes:
        for hidden in hiddens:
            for direction in directions:
                for batch in batches:
                    size = (SHAPES[shape], direction, batch, hidden)
                    cases.append(Case(BASELINE, "torch", *size))
                    cases += [Case(name.upper(), "fast", *size) for name in cells]
                    if reference:
                        cases.append(Case(REFERENCE_CELL, "reference", *size))
    return cases


class TorchLSTMNet(nn.Module):
    """The baseline: torch's fused nn.LSTM under the same linear output layer."""

    def __init__(self, features: int, hidden: int, classes: int, bidirectional: bool):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, bidirectional=bidirectional)
        self.classifier = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.lstm(x)[0])


def build_model(case: Case) -> nn.Module:
    """The network a case trains."""
    shape = case.shape
    if case.cell == BASELINE:
        return TorchLSTMNet(shape.features, case.hidden, shape.classes, case.direction == "bidi")
    return SequenceNet(
        case.cell,
        shape.features,
        case.hidden,
        shape.classes,
        direction=case.direction,
        impl=case.impl,
    )


def matrix_flops(case: Case) -> float:
    """Nominal FLOPs of the matrix products of one training step (forward + backward)."""
    shape = case.shape
    directions = 2 if case.direction == "bidi" else 1
    model = build_model(case)
    recurrent = sum(
        p.numel()
        for name, p in model.named_parameters()
        if "weight" in name and "classifier" not in name
    )
    classifier = case.hidden * directions * shape.classes
    # 2 FLOPs per weight per step forward, twice that backward (input and weight gradients).
    return 6.0 * (recurrent + classifier) * shape.steps * case.batch


def training_step(model: nn.Module, case: Case, device: str) -> Callable[[], None]:
    """One step of SGD with momentum on random inputs and targets, as a closure."""
    shape = case.shape
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(shape.steps, case.batch, shape.features, generator=generator).to(device)
    targets = torch.randint(0, shape.classes, (shape.steps * case.batch,), generator=generator)
    targets = targets.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, shape.classes), targets)
        loss.backward()
        optimizer.step()

    return step


def synchronize(device: str) -> None:
    """Wait for queued device work, so wall time covers it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(
    steps: list[Callable[[], None]], device: str, min_time: float, min_repeats: int
) -> list[float]:
    """Median seconds of each step, timed in turns (one burst of each per round).

    Taking turns spreads any change in the machine's load over all of them alike, so their
    ratios stay fair on a busy machine. Within a turn a step runs back to back for BURST_SECONDS
    (at least once), as it does in training: a single short step timed right after another
    row's work would start with caches that work has emptied, which training never sees.
    Rounds go on until each step has run min_repeats bursts and the rounds have lasted
    min_time per step.
    """
    times: list[list[float]] = [[] for _ in steps]
    start = time.perf_counter()
    while len(times[0]) < min_repeats or time.perf_counter() - start < min_time * len(steps):
        for step, record in zip(steps, times, strict=True):
            record.append(burst_seconds_per_step(step, device))
    return [statistics.median(record) for record in times]


BURST_SECONDS = 0.05


def burst_seconds_per_step(step: Callable[[], None], device: str) -> float:
    """Seconds per step over a run of back-to-back steps lasting about BURST_SECONDS."""
    count = 0
    begin = time.perf_counter()
    while True:
        step()
        synchronize(device)
        count += 1
        elapsed = time.perf_counter() - begin
        if elapsed >= BURST_SECONDS:
            return elapsed / count


def size_groups(cases: list[Case]) -> list[list[int]]:
    """Indices of the cases of each size (shape, direction, batch, hidden), in grid order."""
    groups: dict[tuple, list[int]] = {}
    for index, case in enumerate(cases):
        groups.setdefault((case.shape, case.direction, case.batch, case.hidden), []).append(index)
    return list(groups.values())


def _rss(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {key} in /proc/self/status")


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MEASURE_THRESHOLD = 4096  # a page: smaller blocks are too few to matter
TIMING_THRESHOLD = 32 * 1024 * 1024  # glibc's largest dynamic threshold: reuse freed blocks


def _mallopt_mmap_threshold(value: int) -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, value))
    except (OSError, AttributeError):
        return False


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(step: Callable[[], None], device: str) -> float | None:
    """Peak memory one step allocates beyond what was allocated before it, in MB.

    On the CPU this needs `cpu_memory_phase` to be on (and None comes back where it cannot be).
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 1e6
    if sys.platform != "linux":
        return None
    try:
        # Free heap blocks are reused before any new mmap; returning their pages to the system
        # first makes their reuse show in the resident set too.
        _malloc_trim()
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets the high-water mark to the current resident set
        before = _rss("VmRSS:")
        step()
        # Below a page or so the resident set moves by noise; a step never frees net memory.
        return max(0.0, (_rss("VmHWM:") - before) / 1e6)
    except OSError:
        return None


def cpu_memory_phase(on: bool) -> bool:
    """Switch the allocator between measuring memory (on) and timing (off).

    Measuring serves every allocation of a page or more by its own mmap, so a freed tensor leaves
    the resident set at once and the resident high-water mark follows the tensors alive at
    each moment. It must start before the large blocks it measures are first allocated (freed
    heap blocks would be reused unseen), and it slows every step, so timing runs without it.
    """
    return sys.platform == "linux" and _mallopt_mmap_threshold(
        MEASURE_THRESHOLD if on else TIMING_THRESHOLD
    )


def sgemm_step(device: str) -> tuple[Callable[[], None], float]:
    """A float32 matrix product to time beside the rows, and its FLOPs."""
    size = 4096 if device.startswith("cuda") else 1024
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.empty(size, size, device=device)

    def step():
        torch.mm(a, b, out=out)

    step()
    return step, 2.0 * size**3


def prepared_step(case: Case, device: str) -> Callable[[], None]:
    """A fresh model's training step for a case, run once (warm-up, and kernel build)."""
    torch.manual_seed(0)
    step = training_step(build_model(case).to(device), case, device)
    step()
    synchronize(device)
    return step


def run_bench(
    cases: list[Case],
    device: str = "cpu",
    min_time: float = 1.0,
    min_repeats: int = 3,
    on_row: Callable[[Row], None] | None = None,
) -> tuple[dict, list[Row]]:
    """Measure every case; returns the run's facts (sgemm rate, torch, threads) and rows."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible to torch; use --device cpu")
    # Every case's model and first step are made while the allocator is in its measuring mode
    # and each one's memory is read then; the timing comes after, in the normal mode.
    cuda = device.startswith("cuda")
    measuring = cuda or cpu_memory_phase(True)
    steps = [prepared_step(case, device) for case in cases]
    memory = [peak_memory(step, device) if measuring else None for step in steps]
    if not cuda:
        cpu_memory_phase(False)
    # The sgemm rate is timed in turns with the rows of each size, under the same load.
    sgemm, sgemm_flops = sgemm_step(device)
    facts = {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sgemm_gflops": 0.0,  # the best rate seen beside any size
        "min_time": min_time,
        "min_repeats": min_repeats,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    rows: list[Row] = []
    for group in size_groups(cases):
        *seconds, sgemm_seconds = interleaved_medians(
            [*(steps[i] for i in group), sgemm], device, min_time, min_repeats
        )
        sgemm_gflops = sgemm_flops / sgemm_seconds / 1e9
        facts["sgemm_gflops"] = max(facts["sgemm_gflops"], sgemm_gflops)
        rates = {i: cases[i].batch / t for i, t in zip(group, seconds, strict=True)}
        base = next((i for i in group if cases[i].cell == BASELINE), None)
        for index, step_seconds in zip(group, seconds, strict=True):
            row = make_row(cases[index], device, step_seconds, memory[index], sgemm_gflops)
            if base is not None:
                row.ratio = rates[index] / rates[base]
                peak, base_peak = memory[index], memory[base]
                row.memory_ratio = peak / base_peak if peak is not None and base_peak else None
            rows.append(row)
            if on_row:
                on_row(row)
    return facts, rows


def make_row(case: Case, device: str, seconds: float, peak: float | None, sgemm: float) -> Row:
    """A table row for a case timed at `seconds` per step (ratios filled in by the caller)."""
    gflops = matrix_flops(case) / seconds / 1e9
    return Row(
        cell=case.cell,
        impl=case.impl,
        kernel=kernel_name(case, device),
        shape=case.shape.name,
        direction=case.direction,
        batch=case.batch,
        hidden=case.hidden,
        samples_per_s=case.batch / seconds,
        step_ms=seconds * 1e3,
        ratio=float("nan"),
        gflops=gflops,
        peak_percent=100.0 * gflops / sgemm,
        peak_memory_mb=peak,
        memory_ratio=None,
    )


def kernel_name(case: Case, device: str) -> str:
    """What runs a case's recurrence."""
    if case.cell == BASELINE:
        return "cudnn" if device.startswith("cuda") else "mkldnn"
    if case.impl == "reference" or get_cell(case.cell).spec is None:
        return "loop"
    return backends.backend_name(torch.empty(0, device=device))


def cpu_name() -> str:
    """The processor's model name, as far as the system says."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "cpu"


HEADER = (
    f"{'shape':6} {'dir':4} {'batch':>5} {'hidden':>6}  {'cell':13} {'impl':9} {'kernel':7} "
    f"{'samples/s':>10} {'x nn.LSTM':>9} {'GFLOP/s':>8} {'% peak':>6} {'mem MB':>8} "
    f"{'x mem':>6}"
)


def format_row(row: Row) -> str:
    """One line of the table."""
    memory = f"{row.peak_memory_mb:8.1f}" if row.peak_memory_mb is not None else f"{'-':>8}"
    memory_ratio = f"{row.memory_ratio:6.2f}" if row.memory_ratio is not None else f"{'-':>6}"
    return (
        f"{row.shape:6} {row.direction:4} {row.batch:5d} {row.hidden:6d}  {row.cell:13} "
        f"{row.impl:9} {row.kernel:7} {row.samples_per_s:10.1f} {row.ratio:9.2f} {row.gflops:8.1f} "
        f"{row.peak_percent:6.1f} {memory} {memory_ratio}"
    )


def rows_to_json(facts: dict, rows: list[Row]) -> dict:
    """The JSON document the command writes."""
    return {"facts": facts, "rows": [asdict(row) for row in rows]}
