"""Iterative-Zero-Out (Xu et al., 2024, "Dynamic Encoder Size Based on Data-Driven
Layer-wise Pruning for Speech Recognition"), Step 1.

Every unit has a gate ``sigmoid(g_u)`` (g starts at 10, gate ~ 1). The smallest subnet
runs every unit scaled by its gate, and a sparsity loss pulls the number of open gates
towards ``L - n_i`` during iteration i. At the last update of iteration i, the ``n_i``
smallest raw gates are set to a low value in place (they stay trainable).
"""
import itertools
from typing import List, Sequence, Union

import torch

from espnet_dynenc.selection.relaxed_topk import top_k_units


class IterativeZeroOut(torch.nn.Module):
    """Sigmoid gates, their sparsity loss and the zero-out schedule.

    Args:
        num_units: L, units in the encoder.
        steps_per_iter: optimizer updates of each iteration.
        zero_out_counts: n_i, cumulative number of units zeroed out after iteration i
            (strictly increasing, below L).
        sparsity_weight: weight of the sparsity loss (5 in the paper).
        init_gate: initial raw gate value.
        zero_out_value: raw value given to zeroed-out gates.
    """

    def __init__(
        self,
        num_units: int,
        steps_per_iter: Sequence[int],
        zero_out_counts: Sequence[int],
        sparsity_weight: float = 5.0,
        init_gate: float = 10.0,
        zero_out_value: float = -5.0,
    ):
        super().__init__()
        steps = [int(s) for s in steps_per_iter]
        counts = [int(n) for n in zero_out_counts]
        if not steps or len(steps) != len(counts):
            raise ValueError(
                f"iterative_zero_out: steps_per_iter ({len(steps)}) and zero_out_counts ({len(counts)}) "
                "must be non-empty lists of the same length"
            )
        if any(s <= 0 for s in steps):
            raise ValueError(f"iterative_zero_out: steps_per_iter must be > 0, got {steps}")
        if counts != sorted(set(counts)) or counts[0] <= 0 or counts[-1] >= num_units:
            raise ValueError(
                f"iterative_zero_out: zero_out_counts {counts} must be strictly increasing in 1..{num_units - 1}"
            )
        self.num_units = num_units
        self.zero_out_counts = counts
        self.boundaries: List[int] = list(itertools.accumulate(steps))
        self.sparsity_weight = sparsity_weight
        self.zero_out_value = zero_out_value
        self.gates = torch.nn.Parameter(torch.full((num_units,), float(init_gate)))

    @property
    def step1_updates(self) -> int:
        return self.boundaries[-1]

    def iteration(self, update: int) -> int:
        """The iteration that update number ``update`` (0-based) belongs to."""
        for i, end in enumerate(self.boundaries):
            if update < end:
                return i
        return len(self.boundaries) - 1

    def current_k(self, update: int) -> int:
        """Units the current iteration aims to keep: L - n_i."""
        return self.num_units - self.zero_out_counts[self.iteration(update)]

    def small_subnet_gates(self, update: int) -> torch.Tensor:
        return torch.sigmoid(self.gates)

    def extra_loss(self, update: int) -> Union[float, torch.Tensor]:
        """w * |(L - sum_u sigmoid(g_u)) / L - n_i / L|."""
        closed = (self.num_units - torch.sigmoid(self.gates).sum()) / self.num_units
        target = self.zero_out_counts[self.iteration(update)] / self.num_units
        return self.sparsity_weight * torch.abs(closed - target)

    @torch.no_grad()
    def after_update(self, update: int) -> None:
        """``update`` updates are done; at an iteration's end zero out its n_i smallest gates."""
        if update in self.boundaries:
            n = self.zero_out_counts[self.boundaries.index(update)]
            lowest = top_k_units(-self.gates.detach(), n)
            self.gates[lowest] = self.zero_out_value

    def ranking(self) -> torch.Tensor:
        return self.gates.detach()
