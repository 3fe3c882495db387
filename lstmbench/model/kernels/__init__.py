"""Fast recurrence for every CellSpec LSTM: a hand-written backward through time, with the
time loop in C++ on the CPU, in Triton kernels on a CUDA GPU where Triton is installed
(triton_recurrence.py, imported only then), and in torch operations elsewhere."""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings

import torch

from lstmbench.model.kernels import generic
from lstmbench.model.kernels.layout import Layout
from lstmbench.model.kernels.native import native_kernel

__all__ = ["Layout", "backend_name", "fused_lstm_sequence", "spec_lstm_sequence"]


NATIVE_DTYPES = (torch.float32, torch.float64)
# "generic" keeps CUDA tensors on the torch-operations kernel (to compare, or to rule the
# Triton kernels out); anything else lets them use Triton where it is installed.
GPU_KERNEL_VARIABLE = "LSTMBENCH_GPU_KERNEL"


def backend_name(x: torch.Tensor) -> str:
    """Which kernel runs for an input like x: "native" (C++), "triton" or "generic" (torch
    ops)."""
    if x.device.type == "cpu":
        native = x.dtype in NATIVE_DTYPES and native_kernel()
        return "native" if native else "generic"
    if x.device.type == "cuda" and x.dtype in NATIVE_DTYPES and triton_wanted():
        return "triton"
    return "generic"


def triton_wanted() -> bool:
    """Whether CUDA tensors go through the Triton kernels: Triton is installed, and
    LSTMBENCH_GPU_KERNEL does not say "generic"."""
    if os.environ.get(GPU_KERNEL_VARIABLE, "triton") == "generic":
        return False
    return _triton_installed()


@functools.cache
def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


class UntilItFails:
    """A kernel used until it raises (a Triton kernel that does not compile or run on this
    device, say); from then on, with one warning, `fallback` (same signatures) for the rest
    of the process. The two keep the same layout of saved tensors, so a backward pass may
    follow a forward of the other."""

    def __init__(self, load, fallback, name: str):
        self._load, self._fallback, self._name = load, fallback, name
        self._kernel = None
        self.failure: Exception | None = None

    def forward(self, *args):
        return self._call("forward", args)

    def backward(self, *args):
        return self._call("backward", args)

    def _call(self, method: str, args):
        if self.failure is None:
            try:
                self._kernel = self._kernel or self._load()
                return getattr(self._kernel, method)(*args)
            except Exception as error:  # any failure of the optional kernel: fall back
                self.failure = error
                warnings.warn(
                    f"the {self._name} recurrence failed here ({type(error).__name__}: {error}); "
                    f"training goes on with the torch-operations kernel (set "
                    f"{GPU_KERNEL_VARIABLE}=generic to use it from the start)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return getattr(self._fallback, method)(*args)


def _load_triton():
    from lstmbench.model.kernels.triton_recurrence import KERNEL

    return KERNEL


_TRITON = UntilItFails(_load_triton, generic, "Triton")


class _Native:
    """The C++ kernel behind the same signatures as `generic`."""

    @staticmethod
    def forward(x, w_ih, w_hh, bias, peep, layout):
        empty = x.new_empty(0)
        return native_kernel().forward(
            x, w_ih, w_hh, bias, empty if peep is None else peep, layout.codes
        )

    @staticmethod
    def backward(dy, x, w_ih, w_hh, peep, y, c, acts, layout, need_dx):
        empty = x.new_empty(0)
        dx, dw_ih, dw_hh, dbias, dpeep = native_kernel().backward(
            dy,
            x,
            w_ih,
            w_hh,
            empty if peep is None else peep,
            y,
            c,
            acts,
            layout.codes,
            need_dx,
        )
        return dx, dw_ih, dw_hh, dbias, (dpeep if peep is not None else None)


class _SpecLSTMSequence(torch.autograd.Function):
    """(x, weights) -> y over a whole sequence, with its own backward through time."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, bias, peep, layout, kernel):
        y, c, acts = kernel.forward(x, w_ih, w_hh, bias, peep, layout)
        ctx.layout, ctx.kernel = layout, kernel
        ctx.save_for_backward(x, w_ih, w_hh, peep, y, c, acts)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, w_ih, w_hh, peep, y, c, acts = ctx.saved_tensors
        dx, dw_ih, dw_hh, dbias, dpeep = ctx.kernel.backward(
            dy, x, w_ih, w_hh, peep, y, c, acts, ctx.layout, ctx.needs_input_grad[0]
        )
        return dx, dw_ih, dw_hh, dbias, dpeep, None, None


def fused_lstm_sequence(x, w_ih, w_hh, bias, peep, spec) -> torch.Tensor:
    """Outputs (T, K, B, H) of K CellSpec LSTMs of one shape over x (T, K, B, I), each with
    its own weights stacked on a first dimension: w_ih (K, G*H, I), w_hh (K, G*H, H), bias
    (K, G*H), peep (K, P, H) or None."""
    kernel = {"native": _Native, "triton": _TRITON, "generic": generic}[backend_name(x)]
    return _SpecLSTMSequence.apply(x.contiguous(), w_ih, w_hh, bias, peep, _layout(spec), kernel)


def spec_lstm_sequence(cell, x: torch.Tensor) -> torch.Tensor:
    """Outputs (T, B, H) of a SpecLSTMCell over x (T, B, I): the fused path with K = 1."""
    peep = cell.peephole.unsqueeze(0) if cell.peephole is not None else None
    y = fused_lstm_sequence(
        x.unsqueeze(1),
        cell.weight_ih.unsqueeze(0),
        cell.weight_hh.unsqueeze(0),
        cell.bias.unsqueeze(0),
        peep,
        cell.spec,
    )
    return y.squeeze(1)


@functools.cache
def _layout(spec) -> Layout:
    return Layout.of(spec)
