"""The fused recurrence in plain torch operations: any device and dtype, K runs at once.

The same algorithm as the C++ kernel (input projections in one product, one product per step,
a hand-written backward through time with the weight gradients in one product over all
steps), with each step's gate arithmetic as a handful of tensor operations. It serves CUDA,
dtypes the C++ kernel does not take, and machines where that kernel could not be built.
"""

from __future__ import annotations

import torch

from lstmbench.model.kernels.layout import Layout


def _activation(kind: str, z: torch.Tensor) -> torch.Tensor:
    if kind == "tanh":
        return torch.tanh(z)
    if kind == "relu":
        return torch.relu(z)
    return z


def _derivative(kind: str, value: torch.Tensor) -> torch.Tensor | float:
    """f'(x) given value = f(x)."""
    if kind == "tanh":
        return 1 - value * value
    if kind == "relu":
        return (value > 0).to(value.dtype)
    return 1.0


def _by_run(a: torch.Tensor) -> torch.Tensor:
    """(T, K, B, n) -> (K, T*B, n): each run's rows in one product."""
    steps, runs, batch, size = a.shape
    return a.transpose(0, 1).reshape(runs, steps * batch, size)


def _by_time(a: torch.Tensor, steps: int) -> torch.Tensor:
    runs, rows, size = a.shape
    return a.view(runs, steps, rows // steps, size).transpose(0, 1).contiguous()


def forward(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    peep: torch.Tensor | None,
    layout: Layout,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K runs: x (T, K, B, I), weights (K, ...). Outputs y, c and activations (T, K, B, .)."""
    steps, runs, batch, _ = x.shape
    hidden = w_hh.shape[2]
    acts = input_projection(x, w_ih, bias)
    y = x.new_empty(steps, runs, batch, hidden)
    c = x.new_empty(steps, runs, batch, hidden)
    c_prev = x.new_zeros(runs, batch, hidden)
    w_hh_t = w_hh.transpose(1, 2)
    peep = peep.unsqueeze(2) if peep is not None else None  # (K, P, 1, H) against (K, B, H)
    for t in range(steps):
        a = acts[t]
        if t > 0:
            a.baddbmm_(y[t - 1], w_hh_t)
        blocks = a.view(runs, batch, layout.blocks, hidden).unbind(2)
        i = r = 1.0
        if layout.i is not None:
            pre = blocks[layout.i]
            if layout.peep_i is not None:
                pre = pre + peep[:, layout.peep_i] * c_prev
            i = torch.sigmoid(pre)
            blocks[layout.i].copy_(i)
        if layout.coupled:
            r = 1 - i
        elif layout.r is not None:
            pre = blocks[layout.r]
            if layout.peep_r is not None:
                pre = pre + peep[:, layout.peep_r] * c_prev
            r = torch.sigmoid(pre)
            blocks[layout.r].copy_(r)
        u = _activation(layout.g, blocks[layout.u])
        blocks[layout.u].copy_(u)
        torch.add(r * c_prev, i * u, out=c[t])
        out = _activation(layout.h, c[t])
        if layout.o is not None:
            pre = blocks[layout.o]
            if layout.peep_o is not None:
                pre = pre + peep[:, layout.peep_o] * c[t]
            o = torch.sigmoid(pre)
            blocks[layout.o].copy_(o)
            out = o * out
        y[t].copy_(out)
        c_prev = c[t]
    return y, c, acts


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    peep: torch.Tensor | None,
    y: torch.Tensor,
    c: torch.Tensor,
    acts: torch.Tensor,
    layout: Layout,
    need_dx: bool,
):
    """Gradients (dx or None, dw_ih, dw_hh, dbias, dpeep or None) from dy (T, K, B, H)."""
    steps, runs, batch, _ = x.shape
    hidden = w_hh.shape[2]
    dz = torch.empty_like(acts)
    dc = x.new_zeros(runs, batch, hidden)
    dpeep = torch.zeros_like(peep) if peep is not None else None
    peep = peep.unsqueeze(2) if peep is not None else None
    zeros = x.new_zeros(runs, batch, hidden)
    for t in range(steps - 1, -1, -1):
        dy_t = dy[t] if t == steps - 1 else torch.baddbmm(dy[t], dz[t + 1], w_hh)
        blocks = acts[t].view(runs, batch, layout.blocks, hidden).unbind(2)
        grads = dz[t].view(runs, batch, layout.blocks, hidden).unbind(2)
        c_t, c_prev = c[t], (c[t - 1] if t > 0 else zeros)
        i = blocks[layout.i] if layout.i is not None else 1.0
        r = 1 - i if layout.coupled else (blocks[layout.r] if layout.r is not None else 1.0)
        u = blocks[layout.u]
        out = _activation(layout.h, c_t)
        d_out = dy_t
        if layout.o is not None:
            o = blocks[layout.o]
            grads[layout.o].copy_(dy_t * out * o * (1 - o))
            d_out = dy_t * o
        dc = dc + d_out * _derivative(layout.h, out)
        if layout.peep_o is not None:
            dc = dc + grads[layout.o] * peep[:, layout.peep_o]
            dpeep[:, layout.peep_o] += (grads[layout.o] * c_t).sum(1)
        grads[layout.u].copy_(dc * i * _derivative(layout.g, u))
        if layout.i is not None:
            di = dc * (u - c_prev) if layout.coupled else dc * u
            grads[layout.i].copy_(di * i * (1 - i))
        if layout.r is not None:
            grads[layout.r].copy_(dc * c_prev * r * (1 - r))
        dc = dc * r
        for gate, row in ((layout.i, layout.peep_i), (layout.r, layout.peep_r)):
            if row is not None:
                dc = dc + grads[gate] * peep[:, row]
                dpeep[:, row] += (grads[gate] * c_prev).sum(1)
    return (*weight_gradients(dz, x, w_ih, y, need_dx), dpeep)


def input_projection(x: torch.Tensor, w_ih: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The input part of every step's pre-activations, (T, K, B, G*H): one batched product."""
    return _by_time(torch.baddbmm(bias.unsqueeze(1), _by_run(x), w_ih.transpose(1, 2)), len(x))


def weight_gradients(
    dz: torch.Tensor, x: torch.Tensor, w_ih: torch.Tensor, y: torch.Tensor, need_dx: bool
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx or None, dw_ih, dw_hh, dbias) from the pre-activation gradients dz (T, K, B, G*H)
    of all steps: one batched product each, after the loop."""
    dz_runs = _by_run(dz)
    dw_ih = dz_runs.transpose(1, 2).bmm(_by_run(x))
    dw_hh = _by_run(dz[1:]).transpose(1, 2).bmm(_by_run(y[:-1]))
    dbias = dz_runs.sum(1)
    dx = _by_time(dz_runs.bmm(w_ih), len(x)) if need_dx else None
    return dx, dw_ih, dw_hh, dbias
