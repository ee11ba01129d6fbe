"""A differentiable k-hot vector from scores (Xie & Ermon, 2019, "Reparameterizable
Subset Sampling via Continuous Relaxations", without the Gumbel noise).

k rounds of softmax, each after lowering the logits of what earlier rounds already took:
the rounds' probabilities add up to a relaxed k-hot vector that sums to k. The
straight-through version is exactly 0/1 in the forward pass and passes the relaxed
vector's gradient backwards.

The floor under ``1 - p`` before its logarithm is the smallest normal number of the
scores' dtype (``torch.finfo(dtype).tiny``, as the authors' code), not a fixed 1e-10: once
a unit's probability rounds to 1 (a score gap of ~17 in float32), 1e-10 would leave that
unit a log-weight of only -23 and let later rounds pick it again (entries above 1), while
``tiny`` (-87) effectively removes it, as the relaxation intends.
"""
from typing import List, Optional, Sequence

import torch


def relaxed_khot(scores: torch.Tensor, k: int, eps: Optional[float] = None) -> torch.Tensor:
    """Relaxed k-hot of a 1-D score vector; entries in [0, 1], sum k.

    ``eps``: floor of ``1 - p`` before the log; None = ``torch.finfo(scores.dtype).tiny``.
    """
    if not 0 < k <= scores.numel():
        raise ValueError(f"k must be in 1..{scores.numel()}, got {k}")
    if eps is None:
        eps = torch.finfo(scores.dtype).tiny
    logits = scores
    probs = torch.zeros_like(scores)
    khot = torch.zeros_like(scores)
    for _ in range(k):
        logits = logits + torch.log(torch.clamp(1.0 - probs, min=eps))
        probs = torch.softmax(logits, dim=0)
        khot = khot + probs
    return khot


def straight_through_khot(scores: torch.Tensor, k: int, eps: Optional[float] = None) -> torch.Tensor:
    """0/1 top-k of the relaxed k-hot forwards, its gradient backwards."""
    soft = relaxed_khot(scores, k, eps)
    hard = torch.zeros_like(soft)
    hard[top_k_units(soft.detach(), k)] = 1.0
    return hard - soft.detach() + soft


def top_k_units(scores: torch.Tensor, k: int) -> List[int]:
    """Indices of the k largest scores; ties go to the lower index (deterministic)."""
    order = sorted(range(scores.numel()), key=lambda u: (-float(scores[u]), u))
    return sorted(order[:k])


def nested_masks(scores: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """(len(sizes), L) bool masks: the top-k units of ``scores`` for every size k."""
    masks = torch.zeros(len(sizes), scores.numel(), dtype=torch.bool)
    for row, k in enumerate(sizes):
        masks[row, top_k_units(scores, k)] = True
    return masks
