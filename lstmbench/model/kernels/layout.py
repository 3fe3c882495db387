"""Where a CellSpec's blocks and peepholes sit, in the form both kernels take."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lstmbench.model.spec import NONLINEARITIES, CellSpec


@dataclass(frozen=True)
class Layout:
    """Block and peephole-row positions of a spec (None when absent)."""

    g: str
    h: str
    i: int | None
    r: int | None
    u: int
    o: int | None
    peep_i: int | None
    peep_r: int | None
    peep_o: int | None
    coupled: bool
    blocks: int

    @classmethod
    def of(cls, spec: CellSpec) -> Layout:
        """The layout of SpecLSTMCell's parameters for `spec`."""
        block = {name: k for k, name in enumerate(spec.blocks)}
        peep = {name: k for k, name in enumerate(spec.peephole_gates)}
        return cls(
            g=spec.g,
            h=spec.h,
            i=block.get("i"),
            r=block.get("r"),
            u=block["u"],
            o=block.get("o"),
            peep_i=peep.get("i"),
            peep_r=peep.get("r"),
            peep_o=peep.get("o"),
            coupled=spec.coupled,
            blocks=len(spec.blocks),
        )

    @functools.cached_property
    def codes(self) -> list[int]:
        """The seven integers the C++ kernel reads (g, h, i, r, o gates, coupled, peepholes)."""
        return [
            NONLINEARITIES.index(self.g),
            NONLINEARITIES.index(self.h),
            int(self.i is not None),
            int(self.r is not None or self.coupled),
            int(self.o is not None),
            int(self.coupled),
            int(self.peep_i is not None or self.peep_o is not None or self.peep_r is not None),
        ]
