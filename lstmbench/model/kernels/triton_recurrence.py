"""The fused recurrence as Triton kernels: one launch runs the whole time loop of K runs.

Same algorithm, arguments and saved tensors as `generic` (and the C++ kernel): the input
projections of all steps are one batched product before the loop; one persistent program per
(run, block of batch rows) then loops over time, adding y_{t-1} W_hh^T and applying the gate
arithmetic; the backward pass loops over time in reverse in one launch, carrying dz_{t+1} and
dc in registers; the weight gradients follow as one batched product each over all steps.

The spec's switches (which gates exist, where their blocks and peephole rows sit, g, h,
coupled) come from its `Layout`, as for the C++ kernel, and become `tl.constexpr` arguments:
each spec compiles to its own kernel without dead branches.

Sizes. One program holds a whole hidden state row (the recurrent product needs all of
y_{t-1}), padded to H_PAD, a power of two. When the recurrent weights of a run, G blocks of
H_PAD x H_PAD, have at most HOIST_LIMIT elements (four gates: H <= 64) they are loaded once
before the time loop and stay in registers; above that they are read again at every step
(from L2 after the first: 256 KB per run at H = 100). That is correct at any H but slower,
and large H (400: 4 MB of weights per run, a 512-wide padded tile) would need the hidden
units split over several programs with a grid-wide barrier per step, which is not built.

This module imports triton: nothing in lstmbench imports it except on request. Without a GPU,
TRITON_INTERPRET=1 (set before triton is imported) runs the kernels on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lstmbench.model.kernels import _SpecLSTMSequence, generic
from lstmbench.model.kernels.layout import Layout
from lstmbench.model.spec import NONLINEARITIES, CellSpec

# Recurrent weights (G * H_PAD**2 elements) kept in registers up to this size; see above.
HOIST_LIMIT = 4 * 64 * 64
# From this many batch rows per program the recurrent product is tl.dot (which needs 16 rows
# on a GPU; fp32 in "ieee" precision, so results match the CPU to rounding). Below it, a
# broadcast product and a sum: at batch 1 a dot would pad 1 row to 16.
DOT_ROWS = 16
MAX_BLOCK_B = 32
# The kernels take g and h as these codes (the C++ kernel's too).
assert NONLINEARITIES == ("tanh", "relu", "linear")


@triton.jit
def _activation(z, KIND: tl.constexpr):
    if KIND == 0:
        # tanh through the sigmoid: one exp, and a function the interpreter has as well.
        out = 2 * tl.sigmoid(2 * z) - 1
    elif KIND == 1:
        out = tl.maximum(z, 0.0)
    else:
        out = z
    return out


@triton.jit
def _times_derivative(d, value, KIND: tl.constexpr):
    """d * f'(x), given value = f(x)."""
    if KIND == 0:
        out = d * (1 - value * value)
    elif KIND == 1:
        out = tl.where(value > 0, d, 0.0)
    else:
        out = d
    return out


@triton.jit
def _product(a, b, USE_DOT: tl.constexpr):
    """a (BLOCK_B, n) @ b (n, m)."""
    if USE_DOT:
        out = tl.dot(a, b, input_precision="ieee")
    else:
        out = tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    return out


@triton.jit
def _weight_tile(
    w_run, block: tl.constexpr, H: tl.constexpr, H_PAD: tl.constexpr, TRANSPOSED: tl.constexpr
):
    """Block `block` of one run's w_hh (G*H, H), zero-padded to (H_PAD, H_PAD): entry [m, j]
    is w[block*H + j, m] when TRANSPOSED (for y @ W^T), else [j, m] is (for dz @ W)."""
    a = tl.arange(0, H_PAD)
    if TRANSPOSED:
        units, inputs = a[None, :], a[:, None]
    else:
        units, inputs = a[:, None], a[None, :]
    mask = (units < H) & (inputs < H)
    return tl.load(w_run + (block * H + units) * H + inputs, mask=mask, other=0.0)


@triton.jit
def _recurrent(
    h,
    w_hoisted,
    w_run,
    block: tl.constexpr,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
    HOIST: tl.constexpr,
    USE_DOT: tl.constexpr,
    TRANSPOSED: tl.constexpr,
):
    """h @ (block of w_hh)^T when TRANSPOSED, else h @ block: from the tile held in registers
    when the weights were hoisted out of the time loop, else read now."""
    if HOIST:
        w = w_hoisted
    else:
        w = _weight_tile(w_run, block, H, H_PAD, TRANSPOSED)
    return _product(h, w, USE_DOT)


@triton.jit
def _weight_tiles(
    w_run,
    I: tl.constexpr,
    R: tl.constexpr,
    U: tl.constexpr,
    O: tl.constexpr,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
    HOIST: tl.constexpr,
    TRANSPOSED: tl.constexpr,
):
    """The recurrent weight tiles of gates i, r, u, o, loaded once for the whole time loop
    when HOIST; otherwise, and for absent gates, stand-ins that are never read."""
    w_u = tl.zeros((1, 1), dtype=w_run.dtype.element_ty)
    if HOIST:
        w_u = _weight_tile(w_run, U, H, H_PAD, TRANSPOSED)
    w_i = w_u
    w_r = w_u
    w_o = w_u
    if HOIST:
        if I >= 0:
            w_i = _weight_tile(w_run, I, H, H_PAD, TRANSPOSED)
        if R >= 0:
            w_r = _weight_tile(w_run, R, H, H_PAD, TRANSPOSED)
        if O >= 0:
            w_o = _weight_tile(w_run, O, H, H_PAD, TRANSPOSED)
    return w_i, w_r, w_u, w_o


@triton.jit
def _peepholes(
    p_run,
    PI: tl.constexpr,
    PR: tl.constexpr,
    PO: tl.constexpr,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
):
    """A run's peephole rows for gates i, r, o, each (1, H_PAD); zeros where absent."""
    j = tl.arange(0, H_PAD)
    p_i = tl.zeros((1, H_PAD), dtype=p_run.dtype.element_ty)
    p_r = p_i
    p_o = p_i
    if PI >= 0:
        p_i = tl.load(p_run + PI * H + j, mask=j < H, other=0.0)[None, :]
    if PR >= 0:
        p_r = tl.load(p_run + PR * H + j, mask=j < H, other=0.0)[None, :]
    if PO >= 0:
        p_o = tl.load(p_run + PO * H + j, mask=j < H, other=0.0)[None, :]
    return p_i, p_r, p_o


@triton.jit
def _forward_kernel(
    acts,
    w_hh,
    peep,
    y,
    c,
    T,
    B,
    a_step,
    h_step,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
    BLOCK_B: tl.constexpr,
    G: tl.constexpr,
    I: tl.constexpr,
    R: tl.constexpr,
    U: tl.constexpr,
    O: tl.constexpr,
    P: tl.constexpr,
    PI: tl.constexpr,
    PR: tl.constexpr,
    PO: tl.constexpr,
    COUPLED: tl.constexpr,
    GFN: tl.constexpr,
    HFN: tl.constexpr,
    HOIST: tl.constexpr,
    USE_DOT: tl.constexpr,
):
    """Program (k, n): rows [n*BLOCK_B, ...) of run k through all T steps. acts (T, K, B, G*H)
    holds the input projections and receives the activations; y and c are (T, K, B, H)."""
    k = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    j = tl.arange(0, H_PAD)
    mask = (b < B)[:, None] & (j < H)[None, :]
    row = (k * B + b)[:, None]
    a_ptr = acts + row * (G * H) + j[None, :]
    y_ptr = y + row * H + j[None, :]
    c_ptr = c + row * H + j[None, :]
    w_run = w_hh + k * (G * H * H)
    p_run = peep + k * (P * H)
    p_i, p_r, p_o = _peepholes(p_run, PI, PR, PO, H, H_PAD)
    w_i, w_r, w_u, w_o = _weight_tiles(w_run, I, R, U, O, H, H_PAD, HOIST, True)
    h_prev = tl.zeros((BLOCK_B, H_PAD), dtype=y.dtype.element_ty)
    c_prev = tl.zeros((BLOCK_B, H_PAD), dtype=y.dtype.element_ty)
    for _ in range(T):
        z = tl.load(a_ptr + U * H, mask=mask, other=0.0)
        z += _recurrent(h_prev, w_u, w_run, U, H, H_PAD, HOIST, USE_DOT, True)
        u = _activation(z, GFN)
        tl.store(a_ptr + U * H, u, mask=mask)
        gi = 1.0
        if I >= 0:
            z = tl.load(a_ptr + I * H, mask=mask, other=0.0)
            z += _recurrent(h_prev, w_i, w_run, I, H, H_PAD, HOIST, USE_DOT, True)
            if PI >= 0:
                z += p_i * c_prev
            gi = tl.sigmoid(z)
            tl.store(a_ptr + I * H, gi, mask=mask)
        gr = 1.0
        if COUPLED:
            gr = 1 - gi
        elif R >= 0:
            z = tl.load(a_ptr + R * H, mask=mask, other=0.0)
            z += _recurrent(h_prev, w_r, w_run, R, H, H_PAD, HOIST, USE_DOT, True)
            if PR >= 0:
                z += p_r * c_prev
            gr = tl.sigmoid(z)
            tl.store(a_ptr + R * H, gr, mask=mask)
        c_t = gr * c_prev + gi * u
        out = _activation(c_t, HFN)
        if O >= 0:
            z = tl.load(a_ptr + O * H, mask=mask, other=0.0)
            z += _recurrent(h_prev, w_o, w_run, O, H, H_PAD, HOIST, USE_DOT, True)
            if PO >= 0:
                z += p_o * c_t
            go = tl.sigmoid(z)
            tl.store(a_ptr + O * H, go, mask=mask)
            out = go * out
        tl.store(c_ptr, c_t, mask=mask)
        tl.store(y_ptr, out, mask=mask)
        h_prev = out
        c_prev = c_t
        a_ptr += a_step
        y_ptr += h_step
        c_ptr += h_step


@triton.jit
def _backward_kernel(
    dy,
    acts,
    w_hh,
    peep,
    c,
    dz,
    dpeep,
    T,
    B,
    a_step,
    h_step,
    a_last,
    h_last,
    H: tl.constexpr,
    H_PAD: tl.constexpr,
    BLOCK_B: tl.constexpr,
    G: tl.constexpr,
    I: tl.constexpr,
    R: tl.constexpr,
    U: tl.constexpr,
    O: tl.constexpr,
    P: tl.constexpr,
    PI: tl.constexpr,
    PR: tl.constexpr,
    PO: tl.constexpr,
    COUPLED: tl.constexpr,
    GFN: tl.constexpr,
    HFN: tl.constexpr,
    HOIST: tl.constexpr,
    USE_DOT: tl.constexpr,
):
    """Program (k, n): the same rows as in the forward pass, steps T-1 down to 0. Writes the
    pre-activation gradients dz (T, K, B, G*H) and this program's peephole gradient sums into
    dpeep (K, programs per run, P, H); dy_t gets dz_{t+1} W_hh in the loop."""
    k = tl.program_id(0).to(tl.int64)
    n = tl.program_id(1)
    b = n * BLOCK_B + tl.arange(0, BLOCK_B)
    j = tl.arange(0, H_PAD)
    mask = (b < B)[:, None] & (j < H)[None, :]
    row = (k * B + b)[:, None]
    # Pointers start at the last step (a_last = (T-1) * a_step, computed on the host where it
    # cannot overflow 32 bits) and move back by one step per iteration.
    a_ptr = acts + row * (G * H) + j[None, :] + a_last
    dz_ptr = dz + row * (G * H) + j[None, :] + a_last
    dy_ptr = dy + row * H + j[None, :] + h_last
    c_ptr = c + row * H + j[None, :] + h_last
    w_run = w_hh + k * (G * H * H)
    p_run = peep + k * (P * H)
    p_i, p_r, p_o = _peepholes(p_run, PI, PR, PO, H, H_PAD)
    w_i, w_r, w_u, w_o = _weight_tiles(w_run, I, R, U, O, H, H_PAD, HOIST, False)
    zeros = tl.zeros((BLOCK_B, H_PAD), dtype=c.dtype.element_ty)
    # dz of step t+1 per gate (zero beyond the last step), and the gradient of c_t.
    dc = zeros
    dz_i = zeros
    dz_r = zeros
    dz_u = zeros
    dz_o = zeros
    dp_i = tl.zeros((H_PAD,), dtype=c.dtype.element_ty)
    dp_r = dp_i
    dp_o = dp_i
    c_t = tl.load(c_ptr, mask=mask, other=0.0)
    for s in range(T):
        t = T - 1 - s
        dy_t = tl.load(dy_ptr, mask=mask, other=0.0)
        dy_t += _recurrent(dz_u, w_u, w_run, U, H, H_PAD, HOIST, USE_DOT, False)
        if I >= 0:
            dy_t += _recurrent(dz_i, w_i, w_run, I, H, H_PAD, HOIST, USE_DOT, False)
        if R >= 0:
            dy_t += _recurrent(dz_r, w_r, w_run, R, H, H_PAD, HOIST, USE_DOT, False)
        if O >= 0:
            dy_t += _recurrent(dz_o, w_o, w_run, O, H, H_PAD, HOIST, USE_DOT, False)
        # c_{t-1}, zero at t = 0 (the comparison as a tensor: a scalar mask is not accepted).
        c_prev = tl.load(c_ptr - h_step, mask=mask & ((j[None, :] * 0 + t) > 0), other=0.0)
        u = tl.load(a_ptr + U * H, mask=mask, other=0.0)
        out = _activation(c_t, HFN)
        d_out = dy_t
        if O >= 0:
            go = tl.load(a_ptr + O * H, mask=mask, other=0.0)
            dz_o = dy_t * out * go * (1 - go)
            tl.store(dz_ptr + O * H, dz_o, mask=mask)
            d_out = dy_t * go
        dc += _times_derivative(d_out, out, HFN)
        if PO >= 0:
            dc += dz_o * p_o
            dp_o += tl.sum(dz_o * c_t, axis=0)
        # dc is now the whole gradient of c_t.
        gi = 1.0
        if I >= 0:
            gi = tl.load(a_ptr + I * H, mask=mask, other=0.0)
            if COUPLED:
                dz_i = dc * (u - c_prev) * gi * (1 - gi)
            else:
                dz_i = dc * u * gi * (1 - gi)
            tl.store(dz_ptr + I * H, dz_i, mask=mask)
        dz_u = _times_derivative(dc * gi, u, GFN)
        tl.store(dz_ptr + U * H, dz_u, mask=mask)
        if COUPLED:
            dc = dc * (1 - gi)
        elif R >= 0:
            gr = tl.load(a_ptr + R * H, mask=mask, other=0.0)
            dz_r = dc * c_prev * gr * (1 - gr)
            tl.store(dz_ptr + R * H, dz_r, mask=mask)
            dc = dc * gr
        # Now the gradient of c_{t-1}, once the peepholes of i and r have added theirs.
        if PI >= 0:
            dc += dz_i * p_i
            dp_i += tl.sum(dz_i * c_prev, axis=0)
        if PR >= 0:
            dc += dz_r * p_r
            dp_r += tl.sum(dz_r * c_prev, axis=0)
        c_t = c_prev
        a_ptr -= a_step
        dz_ptr -= a_step
        dy_ptr -= h_step
        c_ptr -= h_step
    p_out = dpeep + (k * tl.num_programs(1) + n) * (P * H) + j
    if PI >= 0:
        tl.store(p_out + PI * H, dp_i, mask=j < H)
    if PR >= 0:
        tl.store(p_out + PR * H, dp_r, mask=j < H)
    if PO >= 0:
        tl.store(p_out + PO * H, dp_o, mask=j < H)


class TritonKernel:
    """The Triton kernels behind the signatures of `generic` (and of the C++ kernel's
    wrapper), so `_SpecLSTMSequence` takes it as its kernel. `block_b` fixes the batch rows
    per program (a power of two), else it follows the batch size; `hoist_limit` is the
    HOIST_LIMIT to apply (tests lower it to check the weight reads inside the loop)."""

    def __init__(
        self, block_b: int | None = None, hoist_limit: int = HOIST_LIMIT, num_warps: int = 4
    ):
        self.block_b = block_b
        self.hoist_limit = hoist_limit
        self.num_warps = num_warps

    def _shape(self, batch: int, hidden: int, blocks: int) -> dict:
        block_b = self.block_b or min(triton.next_power_of_2(batch), MAX_BLOCK_B)
        use_dot = block_b >= DOT_ROWS
        # tl.dot needs 16 on each side on a GPU; the broadcast product any power of two.
        h_pad = max(triton.next_power_of_2(hidden), 16 if use_dot else 1)
        return dict(
            H=hidden,
            H_PAD=h_pad,
            BLOCK_B=block_b,
            HOIST=blocks * h_pad * h_pad <= self.hoist_limit,
            USE_DOT=use_dot,
        )

    def forward(self, x, w_ih, w_hh, bias, peep, layout: Layout):
        """K runs: x (T, K, B, I), weights (K, ...). Returns y, c and activations (T, K, B, .)."""
        _check_dtype(x)
        steps, runs, batch, _ = x.shape
        hidden = w_hh.shape[2]
        acts = generic.input_projection(x, w_ih, bias)
        y = x.new_empty(steps, runs, batch, hidden)
        c = torch.empty_like(y)
        shape = self._shape(batch, hidden, layout.blocks)
        grid = (runs, triton.cdiv(batch, shape["BLOCK_B"]))
        _forward_kernel[grid](
            acts,
            w_hh.contiguous(),
            _peep_or_dummy(peep, x),
            y,
            c,
            steps,
            batch,
            runs * batch * layout.blocks * hidden,
            runs * batch * hidden,
            **shape,
            **_switches(layout, peep),
            num_warps=self.num_warps,
        )
        return y, c, acts

    def backward(self, dy, x, w_ih, w_hh, peep, y, c, acts, layout: Layout, need_dx: bool):
        """Gradients (dx or None, dw_ih, dw_hh, dbias, dpeep or None) from dy (T, K, B, H)."""
        steps, runs, batch, _ = x.shape
        hidden = w_hh.shape[2]
        shape = self._shape(batch, hidden, layout.blocks)
        grid = (runs, triton.cdiv(batch, shape["BLOCK_B"]))
        dz = torch.zeros_like(acts)  # zero where a program's padded rows write nothing
        rows = peep.shape[1] if peep is not None else 1
        partial = x.new_zeros(runs, grid[1], rows, hidden)
        a_step = runs * batch * layout.blocks * hidden
        h_step = runs * batch * hidden
        _backward_kernel[grid](
            dy.contiguous(),
            acts,
            w_hh.contiguous(),
            _peep_or_dummy(peep, x),
            c,
            dz,
            partial,
            steps,
            batch,
            a_step,
            h_step,
            (steps - 1) * a_step,
            (steps - 1) * h_step,
            **shape,
            **_switches(layout, peep),
            num_warps=self.num_warps,
        )
        dpeep = partial.sum(1) if peep is not None else None
        return (*generic.weight_gradients(dz, x, w_ih, y, need_dx), dpeep)


def _check_dtype(x: torch.Tensor) -> None:
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the Triton recurrence takes float32 or float64, not {x.dtype}")


def _peep_or_dummy(peep: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The peepholes, or a one-element stand-in: the kernel needs a pointer but never reads it."""
    return peep.contiguous() if peep is not None else x.new_zeros(1)


def _switches(layout: Layout, peep: torch.Tensor | None) -> dict:
    """The spec as the kernels' compile-time constants (-1: absent)."""

    def at(position: int | None) -> int:
        return -1 if position is None else position

    return dict(
        G=layout.blocks,
        I=at(layout.i),
        R=at(layout.r),
        U=layout.u,
        O=at(layout.o),
        P=peep.shape[1] if peep is not None else 0,
        PI=at(layout.peep_i),
        PR=at(layout.peep_r),
        PO=at(layout.peep_o),
        COUPLED=layout.coupled,
        GFN=NONLINEARITIES.index(layout.g),
        HFN=NONLINEARITIES.index(layout.h),
    )


KERNEL = TritonKernel()


def triton_lstm_sequence(x, w_ih, w_hh, bias, peep, spec: CellSpec, kernel=KERNEL):
    """`fused_lstm_sequence` through the Triton kernels: outputs (T, K, B, H) of K CellSpec
    LSTMs over x (T, K, B, I), w_ih (K, G*H, I), w_hh (K, G*H, H), bias (K, G*H), peep
    (K, P, H) or None; differentiable through the hand-written backward pass."""
    return _SpecLSTMSequence.apply(x.contiguous(), w_ih, w_hh, bias, peep, Layout.of(spec), kernel)
