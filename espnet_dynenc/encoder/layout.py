"""What a block is made of: its units, their order, residual scales and widths.

A *unit* is one Conformer module with its own pre-norm and residual connection
(``x <- x + scale * M(norm(x))``). Units are numbered across the encoder,
``u = block * units_per_block + position``; a subnet is the set of units it keeps.
Each unit keeps the attribute names of ESPnet's ``EncoderLayer`` so that a stock
Conformer state dict maps onto the encoder.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

UNIT_KINDS = ("ffn", "mhsa", "conv")
_NAMES = {"mhsa": ("self_attn", "norm_mha"), "conv": ("conv_module", "norm_conv")}


@dataclass(frozen=True)
class UnitSpec:
    """One unit of a block: its kind, ESPnet attribute names and residual scale."""

    kind: str
    module_name: str
    norm_name: str
    scale: float


def default_unit_order(macaron_style: bool, use_cnn_module: bool) -> List[str]:
    """ESPnet's ``EncoderLayer`` order: [macaron FFN], MHSA, [conv], FFN."""
    order = ["ffn"] if macaron_style else []
    order += ["mhsa"] + (["conv"] if use_cnn_module else []) + ["ffn"]
    return order


def build_unit_specs(
    unit_order: Sequence[str],
    unit_scales: Optional[Sequence[float]],
    macaron_style: bool,
    use_cnn_module: bool,
) -> List[UnitSpec]:
    """Validate a unit order against the ESPnet switches and name every unit."""
    order = [str(kind).lower() for kind in unit_order]
    for kind in order:
        if kind not in UNIT_KINDS:
            raise ValueError(f"unit_order: unknown module '{kind}' (choose from {UNIT_KINDS})")
    counts = {kind: order.count(kind) for kind in UNIT_KINDS}
    if counts["mhsa"] > 1 or counts["conv"] > 1 or counts["ffn"] > 2:
        raise ValueError(f"unit_order {order}: at most two 'ffn', one 'mhsa' and one 'conv' per block")
    if (counts["ffn"] == 2) != macaron_style:
        raise ValueError(
            f"unit_order {order} has {counts['ffn']} 'ffn' units but macaron_style={macaron_style}"
        )
    if (counts["conv"] == 1) != use_cnn_module:
        raise ValueError(f"unit_order {order} disagrees with use_cnn_module={use_cnn_module}")
    if unit_scales is None:
        ffn_scale = 0.5 if macaron_style else 1.0
        scales = [ffn_scale if kind == "ffn" else 1.0 for kind in order]
    else:
        scales = [float(s) for s in unit_scales]
        if len(scales) != len(order):
            raise ValueError(f"unit_scales has {len(scales)} entries, unit_order has {len(order)}")
    specs = []
    seen_ffn = 0
    for kind, scale in zip(order, scales):
        if kind == "ffn":
            first_of_two = counts["ffn"] == 2 and seen_ffn == 0
            names = ("feed_forward_macaron", "norm_ff_macaron") if first_of_two else ("feed_forward", "norm_ff")
            seen_ffn += 1
        else:
            names = _NAMES[kind]
        specs.append(UnitSpec(kind, names[0], names[1], scale))
    return specs


def build_block_widths(
    specs: Sequence[UnitSpec],
    num_blocks: int,
    defaults: Dict[str, int],
    block_widths: Optional[Sequence[Optional[Dict[str, int]]]],
) -> List[Dict[str, int]]:
    """Per block, the width of each module: FFN hidden units, attention heads, conv channels.

    ``defaults`` maps a unit kind to its uniform width; ``block_widths`` (one dict per block,
    keyed by module name such as ``feed_forward_macaron``) overrides it. Width 0 removes the
    module: the unit becomes an exact identity.
    """
    names = [spec.module_name for spec in specs]
    if block_widths is not None and len(block_widths) != num_blocks:
        raise ValueError(f"block_widths has {len(block_widths)} entries, expected num_blocks={num_blocks}")
    widths = []
    for b in range(num_blocks):
        override = dict((block_widths[b] or {}) if block_widths is not None else {})
        for name in override:
            if name not in names:
                raise ValueError(f"block_widths[{b}]: unknown module '{name}' (this block has {names})")
        row = {}
        for spec in specs:
            width = int(override.get(spec.module_name, defaults[spec.kind]))
            if width < 0:
                raise ValueError(f"block_widths[{b}]['{spec.module_name}'] must be >= 0, got {width}")
            row[spec.module_name] = width
        widths.append(row)
    return widths
