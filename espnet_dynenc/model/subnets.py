"""Subnet sizes and their unit masks: parsing and validation.

A subnet is named by its size k, the number of units it keeps. Masks are nested
(every unit of a smaller subnet is in every larger one) and the largest size is the
whole encoder, the supernet.
"""
from typing import List, Optional, Sequence, Union

import torch

MaskSpec = Union[str, Sequence[int], Sequence[bool]]


def parse_mask(spec: MaskSpec, num_units: int, option: str) -> List[bool]:
    """A mask from a string of 0/1 (spaces ignored) or a list of 0/1; errors name ``option``."""
    if isinstance(spec, str):
        chars = [c for c in spec if not c.isspace()]
        if any(c not in "01" for c in chars):
            raise ValueError(f"{option}: '{spec}' must contain only 0, 1 and spaces")
        values = [c == "1" for c in chars]
    else:
        values = []
        for v in spec:
            if v not in (0, 1, True, False):
                raise ValueError(f"{option}: entries must be 0 or 1, got {v!r}")
            values.append(bool(v))
    if len(values) != num_units:
        raise ValueError(f"{option}: mask has {len(values)} entries, the encoder has {num_units} units")
    return values


def first_units_mask(size: int, num_units: int) -> List[bool]:
    """Keep the first ``size`` units (the early-exit subnet)."""
    return [u < size for u in range(num_units)]


def build_subnet_masks(
    sizes: Optional[Sequence[int]],
    masks: Optional[Sequence[MaskSpec]],
    num_units: int,
) -> torch.Tensor:
    """Validate sizes and masks; return a (num_sizes, num_units) bool tensor.

    ``sizes`` default to ``[num_units]`` (the supernet alone). ``masks`` default to the
    first k units of each size; when given, one per size, each keeping exactly k units.
    """
    sizes = [num_units] if sizes is None else [int(k) for k in sizes]
    if not sizes:
        raise ValueError("subnet_sizes: at least one size is needed")
    for k in sizes:
        if not 0 < k <= num_units:
            raise ValueError(f"subnet_sizes: {k} is not in 1..{num_units} (the encoder has {num_units} units)")
    if sizes != sorted(set(sizes)):
        raise ValueError(f"subnet_sizes: {sizes} must be strictly increasing")
    if sizes[-1] != num_units:
        raise ValueError(f"subnet_sizes: the largest size must be the whole encoder ({num_units}), got {sizes[-1]}")
    if masks is None:
        rows = [first_units_mask(k, num_units) for k in sizes]
    else:
        if len(masks) != len(sizes):
            raise ValueError(f"subnet_masks: {len(masks)} masks for {len(sizes)} subnet_sizes")
        rows = [parse_mask(m, num_units, f"subnet_masks[{i}]") for i, m in enumerate(masks)]
        for i, (k, row) in enumerate(zip(sizes, rows)):
            if sum(row) != k:
                raise ValueError(f"subnet_masks[{i}]: keeps {sum(row)} units, but its size is {k}")
    table = torch.tensor(rows, dtype=torch.bool)
    check_nested(table, sizes)
    return table


def check_nested(table: torch.Tensor, sizes: Sequence[int]) -> None:
    """Every smaller subnet's units must all be in the next larger one."""
    for i in range(len(sizes) - 1):
        outside = table[i] & ~table[i + 1]
        if bool(outside.any()):
            units = outside.nonzero().flatten().tolist()
            raise ValueError(
                f"subnet_masks: not nested: subnet {sizes[i]} keeps units {units} "
                f"that subnet {sizes[i + 1]} prunes"
            )


def mask_to_string(mask: Sequence[bool], units_per_block: int) -> str:
    """``1111 0101 ...``: one group of digits per block."""
    digits = "".join("1" if m else "0" for m in mask)
    return " ".join(digits[i:i + units_per_block] for i in range(0, len(digits), units_per_block))
