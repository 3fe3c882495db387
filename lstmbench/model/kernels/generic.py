"""The fused recurrence in plain torch operations: any device and dtype.

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


def forward(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    peep: torch.Tensor | None,
    layout: Layout,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Outputs y, cell states c and gate activations, each (T, B, .)."""
    steps, batch, size = x.shape
    hidden = w_hh.shape[1]
    acts = torch.addmm(bias, x.reshape(-1, size), w_ih.t()).view(steps, batch, -1)
    y = x.new_empty(steps, batch, hidden)
    c = x.new_empty(steps, batch, hidden)
    c_prev = x.new_zeros(batch, hidden)
    w_hh_t = w_hh.t()
    for t in range(steps):
        a = acts[t]
        if t > 0:
            a.addmm_(y[t - 1], w_hh_t)
        blocks = a.view(batch, layout.blocks, hidden).unbind(1)
        i = r = 1.0
        if layout.i is not None:
            pre = blocks[layout.i]
            if layout.peep_i is not None:
                pre = pre + peep[layout.peep_i] * c_prev
            i = torch.sigmoid(pre)
            blocks[layout.i].copy_(i)
        if layout.coupled:
            r = 1 - i
        elif layout.r is not None:
            pre = blocks[layout.r]
            if layout.peep_r is not None:
                pre = pre + peep[layout.peep_r] * c_prev
            r = torch.sigmoid(pre)
            blocks[layout.r].copy_(r)
        u = _activation(layout.g, blocks[layout.u])
        blocks[layout.u].copy_(u)
        torch.add(r * c_prev, i * u, out=c[t])
        out = _activation(layout.h, c[t])
        if layout.o is not None:
            pre = blocks[layout.o]
            if layout.peep_o is not None:
                pre = pre + peep[layout.peep_o] * c[t]
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
    """Gradients (dx or None, dw_ih, dw_hh, dbias, dpeep or None) from dy (T, B, H)."""
    steps, batch, size = x.shape
    hidden = w_hh.shape[1]
    dz = torch.empty_like(acts)
    dc = x.new_zeros(batch, hidden)
    dpeep = torch.zeros_like(peep) if peep is not None else None
    zeros = x.new_zeros(batch, hidden)
    for t in range(steps - 1, -1, -1):
        dy_t = dy[t] if t == steps - 1 else torch.addmm(dy[t], dz[t + 1], w_hh)
        blocks = acts[t].view(batch, layout.blocks, hidden).unbind(1)
        grads = dz[t].view(batch, layout.blocks, hidden).unbind(1)
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
            dc = dc + grads[layout.o] * peep[layout.peep_o]
            dpeep[layout.peep_o] += (grads[layout.o] * c_t).sum(0)
        grads[layout.u].copy_(dc * i * _derivative(layout.g, u))
        if layout.i is not None:
            di = dc * (u - c_prev) if layout.coupled else dc * u
            grads[layout.i].copy_(di * i * (1 - i))
        if layout.r is not None:
            grads[layout.r].copy_(dc * c_prev * r * (1 - r))
        dc = dc * r
        for gate, row in ((layout.i, layout.peep_i), (layout.r, layout.peep_r)):
            if row is not None:
                dc = dc + grads[gate] * peep[row]
                dpeep[row] += (grads[gate] * c_prev).sum(0)
    dz_flat = dz.view(steps * batch, -1)
    dw_ih = dz_flat.t().mm(x.reshape(-1, size))
    dw_hh = dz[1:].reshape(-1, dz.shape[2]).t().mm(y[:-1].reshape(-1, hidden))
    dbias = dz_flat.sum(0)
    dx = dz_flat.mm(w_ih).view(steps, batch, size) if need_dx else None
    return dx, dw_ih, dw_hh, dbias, dpeep
