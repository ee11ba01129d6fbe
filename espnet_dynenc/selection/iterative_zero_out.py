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

Gate scale (``gate_scale``, default 1: the paper's gates). Adam moves a parameter by about
its learning rate per update whatever the size of its gradient, so over Step 1 a gate moves
by at most about the sum of the learning rates of Step 1. The released schedules sum to
49-103 there: gates starting at 10 reach any value the sparsity loss asks for. A short
schedule may sum to ~2 (the embedded recipe: 1.7 over 8 iterations); the gates then barely
leave 10, the sparsity term never binds (sum of gates 24.0 against a target of 22) and the
zero-out picks among nearly tied gates. Scaling the gradient would not help (Adam is
invariant to it, and ESPnet gives every parameter one group), so the gates are
reparametrised: the parameter ``gates`` holds raw values r and a unit's gate is
``sigmoid(gate_scale * r)``, r starting at ``init_gate / gate_scale``. Adam's steps on r of
about lr move the gate's logit ``gate_scale`` times further, about as if Step 1 had
``gate_scale`` times its learning rates, and nothing else in the model changes. A
decoupled weight decay (AdamW) shrinks the logit as it shrinks r. ``init_gate`` and
``zero_out_value`` stay logits (what the paper gives); :meth:`logits`, :meth:`ranking`,
the sparsity loss and the zero-out all work on the logits. ``tools/simulate_zero_out.py``
replays a training config's Step-1 learning rates on the gates to choose the values: for
the embedded recipe, ``gate_scale: 50`` (Step 1 then moves the logits as far as a summed
learning rate of ~83 would) with ``init_gate: 4`` (sigmoid 0.98: the gates start near the
first target instead of 7 logits above it, which the first iteration's small learning
rates could not cover) meets every iteration's target.

Checkpoints. The state dict's ``gates`` are always the logits, whatever the scale (a
checkpoint written before the option, or with another scale, loads with its meaning); with
``gate_scale`` other than 1 they are converted from and to the raw parameter on save and
load (``keep_vars`` then gives a detached tensor for them).
"""
import itertools
import logging
import math
from numbers import Real
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
        init_gate: initial gate logit (10 in the paper).
        zero_out_value: logit given to zeroed-out gates (-5 in the paper), below ``init_gate``.
        gate_scale: the gate logit is ``gate_scale`` x the parameter ``gates`` (> 0; 1, the
            default, is the paper's parametrisation). Larger values let a schedule with a
            small learning-rate budget move the gates (see the module doc).
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
        gate_scale: float = 1.0,
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
        for name, value in (("init_gate", init_gate), ("zero_out_value", zero_out_value),
                            ("gate_scale", gate_scale)):
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise ValueError(f"iterative_zero_out: {name} must be a finite number, got {value!r}")
        if gate_scale <= 0:
            raise ValueError(f"iterative_zero_out: gate_scale must be > 0, got {gate_scale!r}")
        if zero_out_value >= init_gate:
            raise ValueError(f"iterative_zero_out: zero_out_value {zero_out_value!r} must be below "
                             f"init_gate {init_gate!r} (a zeroed-out gate has to close)")
        self.num_units = num_units
        self.zero_out_counts = counts
        self.sparsity_weight_relative_to = sparsity_weight_relative_to
        self.boundaries: List[int] = list(itertools.accumulate(steps))
        self.sparsity_weight = sparsity_weight
        self.zero_out_value = float(zero_out_value)
        self.gate_scale = float(gate_scale)
        self.gates = torch.nn.Parameter(torch.full((num_units,), float(init_gate) / self.gate_scale))

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

    def logits(self) -> torch.Tensor:
        """The gate logits, ``gate_scale`` x the parameter ``gates`` (differentiable)."""
        if self.gate_scale == 1.0:
            return self.gates
        return self.gates * self.gate_scale

    def small_subnet_gates(self, update: int) -> torch.Tensor:
        return torch.sigmoid(self.logits())

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
        closed = (self.num_units - torch.sigmoid(self.logits()).sum()) / self.num_units
        target = self.zero_out_counts[self.iteration(update)] / self.num_units
        return self.effective_weight(frames_per_utterance) * torch.abs(closed - target)

    @torch.no_grad()
    def after_update(self, update: int) -> None:
        """``update`` updates are done; at an iteration's end log how close the gates came to
        its target, and (but after the last) zero out its n_i smallest gates (their logits go
        to ``zero_out_value``)."""
        if update not in self.boundaries:
            return
        iteration = self.boundaries.index(update)
        n = self.zero_out_counts[iteration]
        open_gates = float(torch.sigmoid(self.logits()).sum())
        target = self.num_units - n
        logging.info("Iterative-Zero-Out: iteration %d ends after update %d: sum of gates %.3f, target %d "
                     "(sparsity term before its weight: %.4f)", iteration + 1, update, open_gates, target,
                     abs(open_gates - target) / self.num_units)
        if iteration < len(self.boundaries) - 1:
            lowest = top_k_units(-self.logits().detach(), n)
            self.gates[lowest] = self.zero_out_value / self.gate_scale

    def ranking(self) -> torch.Tensor:
        """The gate logits, detached."""
        return self.logits().detach()

    # The state dict holds the logits (see the module doc).
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.gate_scale != 1.0:
            destination[prefix + "gates"] = self.logits().detach()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "gates"
        if self.gate_scale != 1.0 and key in state_dict:
            state_dict[key] = state_dict[key] / self.gate_scale
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
