"""Stochastic depth (Huang et al., 2016, "Deep Networks with Stochastic Depth").

A residual branch is dropped with probability ``p`` during training; when kept it is
scaled by ``1 / (1 - p)`` so its expected contribution is unchanged, and at test time
it is always kept and never scaled. Lee et al. (2021, "Layer Pruning on Demand with
Intermediate CTC") train with a rate that grows linearly with depth so that any block
can be removed at run time.
"""
from typing import List, Sequence, Union

import torch

SCHEDULES = ("constant", "linear")
MODES = ("batch", "utterance")


def depth_schedule(rate: Union[float, Sequence[float]], num_blocks: int, schedule: str = "constant") -> List[float]:
    """Per-block drop probabilities.

    ``rate`` may already be a per-block list (ESPnet's ``stochastic_depth_rate``);
    otherwise ``constant`` gives every block ``rate`` and ``linear`` gives block ``l``
    (1-based) ``rate * l / num_blocks``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"stochastic_depth_schedule must be one of {SCHEDULES}, got '{schedule}'")
    if isinstance(rate, (list, tuple)):
        if len(rate) != num_blocks:
            raise ValueError(
                f"stochastic_depth_rate has {len(rate)} entries, expected num_blocks={num_blocks}"
            )
        rates = [float(r) for r in rate]
    elif schedule == "linear":
        rates = [float(rate) * (l + 1) / num_blocks for l in range(num_blocks)]
    else:
        rates = [float(rate)] * num_blocks
    for r in rates:
        if not 0.0 <= r < 1.0:
            raise ValueError(f"stochastic_depth_rate values must be in [0, 1), got {r}")
    return rates


def keep_scale(p: float, batch: int, mode: str, device: torch.device, dtype: torch.dtype) -> Union[float, torch.Tensor]:
    """Draw whether a branch is kept and return its training-time multiplier.

    ``mode="batch"``: one draw for the whole batch, a float (0.0 or ``1/(1-p)``).
    ``mode="utterance"``: one draw per utterance ("row-wise"), a (batch, 1, 1) tensor.
    """
    if p <= 0.0:
        return 1.0
    if mode == "batch":
        return 0.0 if torch.rand(()).item() < p else 1.0 / (1.0 - p)
    if mode == "utterance":
        keep = torch.rand(batch, 1, 1, device=device) >= p
        return keep.to(dtype) / (1.0 - p)
    raise ValueError(f"stochastic depth mode must be one of {MODES}, got '{mode}'")
