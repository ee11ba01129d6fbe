"""One Conformer block whose units are run, gated or skipped one by one."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm

from espnet_dynenc.encoder.layout import UnitSpec

Multiplier = Optional[Union[float, torch.Tensor]]


@dataclass
class AttentionInputs:
    """What the mixing modules need besides ``x``: masks and positions."""

    mask: torch.Tensor  # (batch, 1, time), True on valid frames
    pad_mask: Optional[torch.Tensor]  # (batch, time), True on padding; None when unpadded
    pos_emb: Optional[torch.Tensor]


class DynamicConformerBlock(torch.nn.Module):
    """A block of units, each ``x <- x + m_u * dropout(M_u(norm_u(x)))``.

    ``m_u`` is the multiplier the encoder passes for unit u (residual scale times
    stochastic-depth and gate factors), or ``None`` for a pruned unit, which is not
    computed at all. A unit of width 0 has no module and is always an identity. The
    block-final norm (ESPnet: present with the conv module) runs even when every unit
    is pruned.

    Args:
        d_model: model dimension.
        units: the block's units in order.
        widths: module name -> width (0 = no module).
        make_module: builds a module for (unit, width).
        dropout_rate: dropout on every unit's output (``unit_dropout`` overrides it per
            module: DMAO rescales a resized module's output dropout with its width).
        normalize_before: pre-norm (True, ESPnet default) or post-norm.
        final_norm: whether the block ends with ``norm_final``.
    """

    def __init__(
        self,
        d_model: int,
        units: Sequence[UnitSpec],
        widths: Dict[str, int],
        make_module: Callable[[UnitSpec, int], torch.nn.Module],
        dropout_rate: float,
        normalize_before: bool,
        final_norm: bool,
    ):
        super().__init__()
        self.units: List[UnitSpec] = list(units)
        self.normalize_before = normalize_before
        for spec in self.units:
            width = widths[spec.module_name]
            setattr(self, spec.module_name, make_module(spec, width) if width > 0 else None)
            setattr(self, spec.norm_name, LayerNorm(d_model) if width > 0 else None)
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.unit_dropout: Dict[str, float] = {}  # module name -> output dropout instead of ``dropout``
        self.norm_final = LayerNorm(d_model) if final_norm else None

    def unit_modules(self, position: int) -> List[torch.nn.Module]:
        """The module and norm of the unit at ``position`` (empty for a width-0 unit)."""
        spec = self.units[position]
        return [m for m in (getattr(self, spec.module_name), getattr(self, spec.norm_name)) if m is not None]

    def forward(self, x: torch.Tensor, inputs: AttentionInputs, multipliers: Sequence[Multiplier]) -> torch.Tensor:
        for spec, multiplier in zip(self.units, multipliers):
            module = getattr(self, spec.module_name)
            if multiplier is None or module is None:
                continue
            norm = getattr(self, spec.norm_name)
            h = norm(x) if self.normalize_before else x
            h = _run_unit(spec.kind, module, h, inputs)
            rate = self.unit_dropout.get(spec.module_name)
            h = self.dropout(h) if rate is None else torch.nn.functional.dropout(h, rate, self.training)
            if not (isinstance(multiplier, float) and multiplier == 1.0):
                h = multiplier * h
            x = x + h
            if not self.normalize_before:
                x = norm(x)
        if self.norm_final is not None:
            x = self.norm_final(x)
        return x


def _run_unit(kind: str, module: torch.nn.Module, h: torch.Tensor, inputs: AttentionInputs) -> torch.Tensor:
    if kind == "mhsa":
        return module(h, inputs.mask, inputs.pos_emb)
    # The conv module and a convolutional FFN mix neighbouring frames: they zero padding.
    return module(h, inputs.pad_mask)
