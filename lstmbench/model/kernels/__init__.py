"""Fast recurrence for every CellSpec LSTM: a hand-written backward through time, with the
time loop in C++ on the CPU and in torch operations elsewhere."""

from __future__ import annotations

import functools

import torch

from lstmbench.model.kernels import generic
from lstmbench.model.kernels.layout import Layout
from lstmbench.model.kernels.native import native_kernel

__all__ = ["Layout", "backend_name", "fused_lstm_sequence", "spec_lstm_sequence"]


NATIVE_DTYPES = (torch.float32, torch.float64)


def backend_name(x: torch.Tensor) -> str:
    """Which kernel runs for an input like x: "native" (C++) or "generic" (torch ops)."""
    native = x.device.type == "cpu" and x.dtype in NATIVE_DTYPES and native_kernel()
    return "native" if native else "generic"


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
    kernel = _Native if backend_name(x) == "native" else generic
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
