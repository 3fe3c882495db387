"""K networks of one shape with their weights stacked, run as one: one fused recurrence call
per layer and direction for all K, and one batched product for their output layers.

Unlike a block-diagonal wide network there are no zero blocks: K runs cost K times one run's
arithmetic, and the per-step overheads (dispatch, the time loop) are paid once.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmbench.model.cells import SpecLSTMCell
from lstmbench.model.kernels import Layout, fused_lstm_sequence
from lstmbench.model.nets import SequenceNet, reverse_padded


def fusable(net: SequenceNet) -> bool:
    """Whether a network can join a fused group: spec LSTM cells on the fast path."""
    return all(
        isinstance(cell, SpecLSTMCell) and layer.impl == "fast"
        for layer in net.layers
        for cell in (layer.forward_cell, layer.backward_cell)
        if cell is not None
    )


class FusedNets(nn.Module):
    """K SequenceNets of one shape as stacked parameters (K, *shape of the one).

    Built from K networks (their weights are copied in); `extract(k)` copies run k's weights
    back into its own network, e.g. to evaluate or save it.
    """

    def __init__(self, nets: list[SequenceNet]):
        super().__init__()
        base = nets[0]
        if not all(fusable(net) for net in nets):
            raise ValueError("fused networks need spec LSTM cells on the fast path")
        shapes = [[(n, p.shape) for n, p in net.named_parameters()] for net in nets]
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError("fused networks must have one shape")
        self.nets = nets
        self.runs = len(nets)
        self.spec = base.layers[0].forward_cell.spec
        self.spec_codes = Layout.of(self.spec).codes
        self.bidirectional = base.layers[0].backward_cell is not None
        self.names = [name for name, _ in base.named_parameters()]
        self.stacked = nn.ParameterList(
            nn.Parameter(torch.stack([dict(net.named_parameters())[name].detach() for net in nets]))
            for name in self.names
        )
        self.by_name = dict(zip(self.names, self.stacked, strict=True))

    def _recurrence(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        p = self.by_name
        return fused_lstm_sequence(
            x,
            p[prefix + "weight_ih"],
            p[prefix + "weight_hh"],
            p[prefix + "bias"],
            p.get(prefix + "peephole"),
            self.spec,
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (T, K, B, classes) for inputs (T, K, B, features) of sequence lengths (B,)
        (the same for every run)."""
        steps, runs, batch, _ = x.shape
        all_lengths = lengths.repeat(runs)
        for layer in range(len(self.nets[0].layers)):
            prefix = f"layers.{layer}."
            y = self._recurrence(prefix + "forward_cell.", x)
            if self.bidirectional:
                flipped = reverse_padded(x.reshape(steps, runs * batch, -1), all_lengths)
                back = self._recurrence(prefix + "backward_cell.", flipped.view_as(x))
                back = reverse_padded(back.reshape(steps, runs * batch, -1), all_lengths)
                y = torch.cat([y, back.view_as(y)], dim=3)
            x = y
        weight, bias = self.by_name["classifier.weight"], self.by_name["classifier.bias"]
        by_run = x.transpose(0, 1).reshape(runs, steps * batch, -1)
        logits = torch.baddbmm(bias.unsqueeze(1), by_run, weight.transpose(1, 2))
        return logits.view(runs, steps, batch, -1).transpose(0, 1)

    def cell_parameters(self) -> list[torch.Tensor]:
        """The stacked parameters in the order of network_step.h: per layer and direction
        weight_ih, weight_hh, bias and peephole (an empty tensor where the cell has none),
        then the output layer's weight and bias."""
        p = self.by_name
        directions = (
            ("forward_cell.", "backward_cell.") if self.bidirectional else ("forward_cell.",)
        )
        flat = []
        for layer in range(len(self.nets[0].layers)):
            for direction in directions:
                prefix = f"layers.{layer}.{direction}"
                peep = p.get(prefix + "peephole")
                flat += [p[prefix + "weight_ih"], p[prefix + "weight_hh"], p[prefix + "bias"]]
                flat.append(peep if peep is not None else p[prefix + "bias"].new_empty(0))
        return flat + [p["classifier.weight"], p["classifier.bias"]]

    @torch.no_grad()
    def extract(self, k: int) -> SequenceNet:
        """Run k as its own network (its weights copied out of the stack)."""
        net = self.nets[k]
        for name, param in net.named_parameters():
            param.copy_(self.by_name[name][k])
        return net
