"""Simple-Top-k (Xu et al., 2024, "Dynamic Encoder Size Based on Data-Driven Layer-wise
Pruning for Speech Recognition"), Step 1.

The smallest subnet runs every unit, each scaled by a (straight-through) relaxed k-hot
gate of learned scores; k anneals from L - r down to k_min by r every N updates, so
Step 1 lasts N * (L - k_min) / r updates.
"""
import math
from typing import Optional, Union

import torch

from espnet_dynenc.selection.relaxed_topk import relaxed_khot, straight_through_khot


class SimpleTopK(torch.nn.Module):
    """Unit scores and the annealed k-hot gates of the smallest subnet.

    Args:
        num_units: L, units in the encoder.
        k_min: the smallest subnet's size (where k stops).
        updates_per_k_step: N, optimizer updates between two reductions of k.
        k_reduction: r, units removed per reduction.
        straight_through: 0/1 gates forwards with relaxed gradients (True), or the relaxed
            gates themselves (the authors' later variant).
        init_score: initial score of every unit.
        tie_break: scores start at ``init_score - tie_break * u / L``: equal up to a tiny,
            deterministic preference for earlier units, so ties never depend on chance.
        eps: floor of ``1 - p`` in the relaxation; None (default) = the dtype's smallest
            normal number, as the authors' code (see ``relaxed_topk``).
    """

    def __init__(
        self,
        num_units: int,
        k_min: int,
        updates_per_k_step: int,
        k_reduction: int = 1,
        straight_through: bool = True,
        init_score: float = 0.5,
        tie_break: float = 1e-3,
        eps: Optional[float] = None,
    ):
        super().__init__()
        if not 0 < k_min < num_units:
            raise ValueError(f"simple_topk: k_min must be in 1..{num_units - 1}, got {k_min}")
        if updates_per_k_step <= 0:
            raise ValueError(f"simple_topk: updates_per_k_step must be > 0, got {updates_per_k_step}")
        if not 0 < k_reduction <= num_units - k_min:
            raise ValueError(f"simple_topk: k_reduction must be in 1..{num_units - k_min}, got {k_reduction}")
        self.num_units = num_units
        self.k_min = k_min
        self.updates_per_k_step = updates_per_k_step
        self.k_reduction = k_reduction
        self.straight_through = straight_through
        self.eps = eps
        ramp = torch.arange(num_units, dtype=torch.float32) / num_units
        self.scores = torch.nn.Parameter(init_score - tie_break * ramp)

    @property
    def step1_updates(self) -> int:
        """Updates in Step 1: N * (L - k_min) / r (rounded up)."""
        return self.updates_per_k_step * math.ceil((self.num_units - self.k_min) / self.k_reduction)

    def current_k(self, update: int) -> int:
        """k(t) = max(L - r - floor(t / N) * r, k_min)."""
        step = update // self.updates_per_k_step
        return max(self.num_units - self.k_reduction - step * self.k_reduction, self.k_min)

    def small_subnet_gates(self, update: int) -> torch.Tensor:
        k = self.current_k(update)
        if self.straight_through:
            return straight_through_khot(self.scores, k, self.eps)
        return relaxed_khot(self.scores, k, self.eps)

    def extra_loss(self, update: int, frames_per_utterance: Optional[float] = None) -> Union[float, torch.Tensor]:
        return 0.0

    def after_update(self, update: int) -> None:
        """Nothing happens between updates."""

    def ranking(self) -> torch.Tensor:
        return self.scores.detach()
