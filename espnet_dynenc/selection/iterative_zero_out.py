"""Iterative-Zero-Out (Xu et al., 2024, "Dynamic Encoder Size Based on Data-Driven
Layer-wise Pruning for Speech Recognition"), Step 1.

Every unit has a gate ``sigmoid(g_u)`` (g starts at 10, gate ~ 1). The smallest subnet
runs every unit scaled by its gate, and a sparsity loss pulls the number of open gates
towards ``L - n_i`` during iteration i. At the last update of iteration i, the ``n_i``
smallest raw gates are set to a low value in place (they stay trainable).

The last iteration ends Step 1 without its zero-out. Zeroing would tie its ``n`` lowest
gates at the zero-out value with no update left to separate them, and every size between
the smallest and the whole model would then be filled by unit index instead of by learned
gate. The masks are the top-k of the gates as the last update leaves them: the smallest
mask is what the last zero-out would have kept, and a middle size takes the next-best
gates. (The authors' LibriSpeech code takes the middle masks before the last zero-out;
their refactored TED-LIUM code skips it; both give these masks.)

Sparsity weight. The authors' CTC loss is summed over the batch and divided by its number
of encoder frames; ESPnet's CTC loss is summed per utterance and averaged over the batch,
so it is larger by the mean number of encoder frames per utterance (50-300 for 2-12 s of
speech at 40 ms frames). With ``sparsity_weight_relative_to: frame_ctc`` (the default)
the weight is multiplied by that number in every update, so ``sparsity_weight: 5`` pulls
the gates as hard against ESPnet's CTC as the paper's 5 against its CTC;
``utterance_ctc`` applies the weight as given.
"""
import itertools
from typing import List, Optional, Sequence, Union

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
        sparsity_weight_relative_to: ``frame_ctc`` (default: the weight means what the
            paper's means, relative to a CTC loss normalised per frame) or
            ``utterance_ctc`` (relative to ESPnet's per-utterance CTC loss, as given).
        init_gate: initial raw gate value.
        zero_out_value: raw value given to zeroed-out gates.
    """

    RELATIVE_TO = ("frame_ctc", "utterance_ctc")

    def __init__(
        self,
        num_units: int,
        steps_per_iter: Sequence[int],
        zero_out_counts: Sequence[int],
        sparsity_weight: float = 5.0,
        sparsity_weight_relative_to: str = "frame_ctc",
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
        if sparsity_weight_relative_to not in self.RELATIVE_TO:
            raise ValueError(f"iterative_zero_out: sparsity_weight_relative_to '{sparsity_weight_relative_to}' "
                             f"is unknown (choose from {', '.join(self.RELATIVE_TO)})")
        self.num_units = num_units
        self.zero_out_counts = counts
        self.sparsity_weight_relative_to = sparsity_weight_relative_to
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

    def effective_weight(self, frames_per_utterance: Optional[float]) -> float:
        """The sparsity weight against ESPnet's per-utterance CTC loss (see the module doc)."""
        if self.sparsity_weight_relative_to == "utterance_ctc":
            return self.sparsity_weight
        if frames_per_utterance is None:
            raise ValueError("iterative_zero_out: sparsity_weight_relative_to frame_ctc needs the batch's "
                             "encoder frames per utterance")
        return self.sparsity_weight * frames_per_utterance

    def extra_loss(self, update: int, frames_per_utterance: Optional[float] = None) -> Union[float, torch.Tensor]:
        """w' * |(L - sum_u sigmoid(g_u)) / L - n_i / L|, w' from :meth:`effective_weight`."""
        closed = (self.num_units - torch.sigmoid(self.gates).sum()) / self.num_units
        target = self.zero_out_counts[self.iteration(update)] / self.num_units
        return self.effective_weight(frames_per_utterance) * torch.abs(closed - target)

    @torch.no_grad()
    def after_update(self, update: int) -> None:
        """``update`` updates are done; at an iteration's end (but the last) zero out its n_i
        smallest gates."""
        if update in self.boundaries[:-1]:
            n = self.zero_out_counts[self.boundaries.index(update)]
            lowest = top_k_units(-self.gates.detach(), n)
            self.gates[lowest] = self.zero_out_value

    def ranking(self) -> torch.Tensor:
        return self.gates.detach()
