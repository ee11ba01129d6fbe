"""How much each group matters: DMAO's importance scores.

DMAO (Xu et al., Interspeech 2025, arXiv 2506.13180) ranks groups by a first-order
Taylor estimate of the loss change when the group is removed, measured on one
designated matrix ``W`` per module:

    score_c = || (dL/dW * W)_c ||_1 / numel(W_c)

with ``W`` = ``w_1`` (and its bias) for a feed-forward module, ``pointwise_conv1``
(value and gate rows, and its bias) for a convolution module and the input columns of
``linear_out`` for self-attention. Dividing by the group's element count makes groups
of different modules comparable, since the scores of all modules are ranked together.
The paper's ablations replace the product by the gradient (``gradient``) or the weight
(``weight``) alone.

Scores are measured every N updates from that update's gradients and smoothed,
``score <- 0.1 * old + 0.9 * new``.
"""
from typing import Dict, Mapping, Optional, Tuple

import torch

from espnet_dynenc.reallocation.kinds import (
    GroupedTensor,
    designated_tensors,
    group_sizes_for,
    module_width,
    resolve_group_size,
)

METHODS = ("taylor", "gradient", "weight")

ScoreKey = Tuple[int, str]  # (block, module name)


def _per_group_abs_sum(x: torch.Tensor, entry: GroupedTensor, n: int) -> torch.Tensor:
    # Along ``dim`` the layout is [half][group][unit rows], so after moving ``dim`` first
    # one reshape puts every group's elements (of both GLU halves) in one row.
    return x.movedim(entry.dim, 0).reshape(entry.halves, n, -1).abs().sum(dim=(0, 2))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got '{method}'")


@torch.no_grad()
def group_scores(
    module: torch.nn.Module, method: str = "taylor", group_size: Optional[int] = None
) -> Optional[torch.Tensor]:
    """One score per group of ``module`` (float32, on the parameters' device).

    ``taylor`` and ``gradient`` read the parameters' ``.grad`` (unscaled, when the
    trainer uses a loss scaler); they return ``None`` when a designated tensor has no
    gradient (the module did not take part in the last backward pass).
    """
    _check_method(method)
    size = resolve_group_size(module, group_size)
    n = module_width(module) // size
    params = dict(module.named_parameters())
    total: Optional[torch.Tensor] = None
    count = 0
    for entry in designated_tensors(module):
        weight = params[entry.name]
        if method != "weight" and weight.grad is None:
            return None
        if method == "weight":
            x = weight.detach().float()
        elif method == "gradient":
            x = weight.grad.float()
        else:
            x = weight.grad.float() * weight.detach().float()
        part = _per_group_abs_sum(x, entry, n)
        total = part if total is None else total + part
        count += x.numel() // n
    return total / count


class ImportanceTracker:
    """EMA-smoothed group scores of every present module of an encoder.

    Call :meth:`update` after the backward pass (after unscaling the gradients under
    AMP, before they are zeroed) of every N-th update; the trainer decides N. Call
    :meth:`reset` after the architecture changes: the scores describe groups that no
    longer exist.

    Args:
        encoder: a ``DynamicConformerEncoder`` (not a DDP wrapper; its blocks are
            rebuilt in place, so the same object stays valid across events).
        method: ``taylor`` (DMAO), ``gradient`` or ``weight``.
        group_sizes: ``{kind: group size}`` overrides of DMAO's group sizes.
        smoothing: weight of the old score in ``score <- s * old + (1 - s) * new``
            (DMAO: 0.1). The first measurement of a module is taken as it is.
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        method: str = "taylor",
        group_sizes: Optional[Mapping[str, int]] = None,
        smoothing: float = 0.1,
    ):
        _check_method(method)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        group_sizes_for(group_sizes, "ffn")  # validates the keys
        self.encoder = encoder
        self.method = method
        self.group_sizes = dict(group_sizes) if group_sizes is not None else None
        self.smoothing = smoothing
        self.scores: Dict[ScoreKey, torch.Tensor] = {}
        self.num_updates = 0

    def measure(self) -> Dict[ScoreKey, torch.Tensor]:
        """This update's raw scores (modules without gradients are left out)."""
        measured = {}
        for b, block in enumerate(self.encoder.encoders):
            for spec in block.units:
                module = getattr(block, spec.module_name)
                if module is None:
                    continue
                size = group_sizes_for(self.group_sizes, spec.kind)
                score = group_scores(module, self.method, size)
                if score is not None:
                    measured[(b, spec.module_name)] = score
        return measured

    def update(self) -> Dict[ScoreKey, torch.Tensor]:
        """Fold this update's scores into the running ones; returns the running scores.

        A module that got no gradient this time keeps its old score: no evidence is
        not evidence of unimportance.
        """
        for key, new in self.measure().items():
            old = self.scores.get(key)
            if old is None:
                self.scores[key] = new
                continue
            if old.shape != new.shape:
                raise ValueError(
                    f"scores of block {key[0]} '{key[1]}' have {old.numel()} groups but the module now has "
                    f"{new.numel()}: call reset() after changing the architecture"
                )
            self.scores[key] = self.smoothing * old + (1.0 - self.smoothing) * new
        self.num_updates += 1
        return self.scores

    def reset(self) -> None:
        """Forget all scores (after a reallocation event)."""
        self.scores = {}
        self.num_updates = 0

    def state_dict(self) -> Dict:
        """Scores and counter, for checkpoints taken between score updates."""
        return {
            "scores": {f"{b}.{name}": s.detach().cpu() for (b, name), s in self.scores.items()},
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping) -> None:
        device = next(self.encoder.parameters()).device
        scores = {}
        for key, value in state["scores"].items():
            block, name = key.split(".", 1)
            scores[(int(block), name)] = value.to(device)
        self.scores = scores
        self.num_updates = int(state["num_updates"])
