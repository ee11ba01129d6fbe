"""Which subnets one update trains (Dynamic Encoder Size, Xu et al., 2024).

Step 1 (a selector is learning the scores): the supernet with every unit, and the
smallest subnet with every unit scaled by the selector's gates. Step 2 (masks frozen):
the sandwich rule, every size when there are at most three, else the largest, the
smallest and one middle size drawn from an RNG seeded by the update count, so that all
ranks of a multi-GPU job draw the same one. Row-wise stochastic depth hits only supernet
units outside the smallest subnet (Step 2) or outside the current top-k (Step 1).

Beyond the paper, :func:`regularize_passes` sets each pass's dropout and stochastic depth
(``pass_regularization``) and :func:`supernet_first` orders the passes for in-place
distillation. Schedules are written in optimizer updates: ``update`` is the 0-based index
of the update being computed (the model's ``num_updates`` before its step).
"""
import random
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import torch

from espnet_dynenc.selection.relaxed_topk import top_k_units


@dataclass
class SubnetPass:
    """One subnet evaluated in an update: which units, how they are scaled, its loss weight,
    and the dropout (a multiple of the configured rates) and stochastic depth it sees."""

    size: int
    mask: Sequence[bool]
    loss_weight: float
    unit_gates: Optional[torch.Tensor] = None
    unit_drop_rates: Optional[Sequence[float]] = None
    dropout_scale: float = 1.0
    stochastic_depth: bool = True


# ``pass_regularization``: what dropout and stochastic depth each pass of an update sees
PASS_REGULARIZATIONS = ("shared", "kept_fraction", "supernet_only")


def regularize_passes(passes: Sequence[SubnetPass], mode: str, num_units: int) -> List[SubnetPass]:
    """Each pass's dropout and stochastic depth under ``mode``.

    ``shared``: every pass as configured (the DES paper). ``kept_fraction``: the dropout
    rates of a pass times the fraction of units its size keeps (the DES authors' follow-up,
    OrthoSoftmax 2025: a smaller subnet has less capacity to regularize). ``supernet_only``:
    dropout and stochastic depth in the supernet pass only, none in the others (AlphaNet,
    Wang et al. 2021: the small subnets underfit, only the largest one overfits).
    """
    if mode not in PASS_REGULARIZATIONS:
        raise ValueError(f"model_conf: pass_regularization '{mode}' is unknown (choose from {PASS_REGULARIZATIONS})")
    if mode == "shared":
        return list(passes)
    out = []
    for subnet in passes:
        if subnet.size == num_units:
            out.append(subnet)
        elif mode == "kept_fraction":
            out.append(replace(subnet, dropout_scale=subnet.size / num_units))
        else:
            out.append(replace(subnet, dropout_scale=0.0, stochastic_depth=False, unit_drop_rates=None))
    return out


def supernet_first(passes: Sequence[SubnetPass], num_units: int) -> List[SubnetPass]:
    """The supernet pass first, the others in their order: in-place distillation needs the
    teacher's posteriors before any student runs."""
    return sorted(passes, key=lambda subnet: subnet.size != num_units)


def drop_rates_outside(kept: Sequence[bool], rate: float) -> Optional[List[float]]:
    """Row-wise stochastic depth ``rate`` on units not in ``kept``; None when rate is 0."""
    if rate <= 0:
        return None
    return [0.0 if keep else rate for keep in kept]


def sandwich_sizes(sizes: Sequence[int], update: int) -> List[int]:
    """All sizes (<= 3), or largest + smallest + one middle size chosen by ``update``."""
    if len(sizes) <= 3:
        return list(sizes)
    middle = random.Random(update).choice(list(sizes[1:-1]))
    return [sizes[0], middle, sizes[-1]]


def step1_passes(selector, update: int, num_units: int, smallest: int, supernet_weight: float,
                 subnet_weight: float, stochastic_depth: float) -> List[SubnetPass]:
    everything = [True] * num_units
    current = set(top_k_units(selector.ranking(), selector.current_k(update)))
    kept = [u in current for u in range(num_units)]
    return [
        SubnetPass(num_units, everything, supernet_weight,
                   unit_drop_rates=drop_rates_outside(kept, stochastic_depth)),
        SubnetPass(smallest, everything, subnet_weight, unit_gates=selector.small_subnet_gates(update)),
    ]


def step2_passes(masks: torch.Tensor, sizes: Sequence[int], update: int, supernet_weight: float,
                 subnet_weight: float, stochastic_depth: float) -> List[SubnetPass]:
    smallest = masks[0].tolist()
    passes = []
    for size in sandwich_sizes(sizes, update):
        mask = masks[list(sizes).index(size)].tolist()
        if size == sizes[-1]:
            passes.append(SubnetPass(size, mask, supernet_weight,
                                     unit_drop_rates=drop_rates_outside(smallest, stochastic_depth)))
        else:
            passes.append(SubnetPass(size, mask, subnet_weight))
    return passes
