"""The C++ CPU kernels: built on first use (cached by torch), or None if they cannot be built."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent
# at::parallel_for is a header template: compiled without OpenMP it runs all its work on the
# calling thread. With -fopenmp it runs on torch's OpenMP threads (the loader hands the
# kernel the libgomp that torch has loaded already), so a step's two directions
# (network_step.h: each_direction) and a batch's CTC alignments (ctc.cpp) use the cores
# torch is given. Apple's compiler has no -fopenmp: there both run on one thread.
LINUX = sys.platform.startswith("linux")
PARALLEL = ["-fopenmp"] if LINUX else ["-fopenmp-simd"]
# -march=native because the build happens on the machine that runs it.
FLAGS = ["-O3", "-march=native", *PARALLEL]
# Per source: -ffast-math lets the exp in the gate loops vectorize (glibc's vector math
# library); the CTC recursions need infinities to behave, so they go without it.
SOURCES = {
    "spec_lstm": [*FLAGS, "-ffast-math"],
    "ctc": FLAGS,
}
LINK_FLAGS = ["-fopenmp"] if LINUX else []
# The headers each source includes: part of its build's identity, copied beside it.
HEADERS = {"spec_lstm": ["recurrence.h", "network_step.h"], "ctc": []}
DISABLE_VARIABLE = "LSTMBENCH_NO_NATIVE"


def _put_ninja_on_path() -> None:
    # torch's builder calls `ninja` from PATH; the pip package installs it beside the venv's
    # python, which is not on PATH unless the venv is activated.
    try:
        import ninja
    except ImportError:
        return
    bin_dir = getattr(ninja, "BIN_DIR", None)
    if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _cpu_signature() -> str:
    """A short hash of the processor's feature flags: builds for -march=native differ by it."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return hashlib.sha1(flags.encode()).hexdigest()[:8]


def build_directory(name: str) -> Path:
    """Where a kernel is built and cached: TORCH_EXTENSIONS_DIR, else torch's default root."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    folder = Path(root) / "lstmbench" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def exclusive_build(folder: Path):
    """Hold an exclusive lock on the build folder, and clear a stale lock torch left behind.

    torch guards a build with a lock *file* that only the builder removes: a build killed
    midway (a sweep worker stopped, say) leaves it, and every later process waits on it
    forever. An flock is released by the kernel when its holder dies, so under ours no other
    lstmbench build can be running, and a torch lock file found here is stale.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on torch's lock alone
        yield
        return
    with open(folder / "lstmbench.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        stale = folder / "lock"
        if stale.exists():
            warnings.warn(
                f"lstmbench: removed a stale build lock left by a stopped build: {stale}",
                RuntimeWarning,
                stacklevel=3,
            )
            stale.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _files(stem: str) -> list[str]:
    return [f"{stem}.cpp", *HEADERS[stem]]


def _toolchain() -> str:
    """The torch installation and Python headers a build compiles and links against.

    torch writes their paths into the build's ninja file: two environments sharing one cache
    under one name would each find the other's file changed and rebuild, a minute every time
    they alternate (two virtual environments, or a sweep's workers beside a benchmark)."""
    import sysconfig

    import torch

    return f"{Path(torch.__file__).parent}|{sysconfig.get_paths()['include']}"


def build_name(stem: str) -> str:
    """The name of STEM.cpp's build: one per processor type, source text (headers included),
    flags and torch installation, so a cache shared between machines, environments or
    checkouts (which build from a copy kept in the folder, see _source_copy) stays valid."""
    source = b"".join((HERE / name).read_bytes() for name in _files(stem))
    source += repr((SOURCES[stem], LINK_FLAGS)).encode() + _toolchain().encode()
    return f"lstmbench_{stem}_{_cpu_signature()}_{hashlib.sha1(source).hexdigest()[:8]}"


def _source_copy(stem: str, folder: Path) -> Path:
    """STEM.cpp and its headers copied into its build folder (whose name already pins their
    content), to build from.

    The build records where its source was: built from the package itself, every other
    location of the same source (another checkout, or the copy Ray ships to each job's
    workers) would rebuild it, a minute or more per worker. Written once, so its time stamp
    does not make the build look stale either.
    """
    for name in _files(stem):
        copy = folder / name
        if not copy.exists():
            partial = folder / f"{name}.partial"
            partial.write_bytes((HERE / name).read_bytes())
            partial.replace(copy)
    return folder / f"{stem}.cpp"


@functools.cache
def native_module(stem: str) -> ModuleType | None:
    """The compiled module of lstmbench/kernels/STEM.cpp, or None (with one warning) when it
    cannot be built."""
    if os.environ.get(DISABLE_VARIABLE):
        return None
    try:
        from torch.utils.cpp_extension import load

        _put_ninja_on_path()
        name = build_name(stem)
        folder = build_directory(name)
        with exclusive_build(folder):
            return load(
                name=name,
                sources=[str(_source_copy(stem, folder))],
                # Copies: torch appends to the lists it is given, and they are part of
                # build_name's hash.
                extra_cflags=list(SOURCES[stem]),
                extra_ldflags=list(LINK_FLAGS),
                build_directory=str(folder),
                verbose=False,
            )
    except Exception as error:  # noqa: BLE001  (any build failure means: use the fallback)
        warnings.warn(
            f"lstmbench: the C++ kernel {stem}.cpp could not be built ({error}); "
            "using the slower torch/NumPy path. Install a C++ compiler and ninja "
            f"to get it, or set {DISABLE_VARIABLE}=1 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def native_kernel() -> ModuleType | None:
    """The recurrence kernel (spec_lstm.cpp), or None."""
    return native_module("spec_lstm")


def native_ctc() -> ModuleType | None:
    """The CTC forward-backward (ctc.cpp), or None."""
    return native_module("ctc")
