"""Dropout at another rate for one forward pass of a weight-shared model.

A supernet's passes share every ``torch.nn.Dropout`` module, whose rate is an attribute
read at call time. A pass that should see less dropout (the DES authors' follow-up,
OrthoSoftmax 2025: dropout scaled by the kept fraction of each subnet) or none (AlphaNet,
Wang et al. 2021: regularization in the largest pass only) runs inside
:func:`scaled_dropout`, which sets the rates for the ``with`` body and always puts them
back. Gradient checkpointing recomputes a pass in backward: the recomputed function must
enter the same ``with`` itself, so that it draws the same masks at the same rates.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

import torch


@contextmanager
def scaled_dropout(module: torch.nn.Module, scale: float) -> Iterator[None]:
    """Every dropout under ``module`` at ``scale`` times its rate inside the ``with`` body.

    Covers ``torch.nn.Dropout`` modules and the per-module output rates a block keeps in a
    ``unit_dropout`` dict (DMAO's rescaled dropouts). ``scale`` 1 changes nothing; 0 turns
    every dropout off.
    """
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"dropout scale must be in [0, 1], got {scale}")
    if scale == 1.0:
        yield
        return
    dropouts: List[Tuple[torch.nn.Dropout, float]] = []
    unit_rates: List[Tuple[torch.nn.Module, Dict[str, float]]] = []
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            dropouts.append((sub, sub.p))
        rates = getattr(sub, "unit_dropout", None)
        if isinstance(rates, dict) and rates:
            unit_rates.append((sub, rates))
    try:
        for sub, p in dropouts:
            sub.p = p * scale
        for sub, rates in unit_rates:
            sub.unit_dropout = {name: rate * scale for name, rate in rates.items()}
        yield
    finally:
        for sub, p in dropouts:
            sub.p = p
        for sub, rates in unit_rates:
            sub.unit_dropout = rates


def last_dropout_rate(module: torch.nn.Module) -> float:
    """The rate of the last ``torch.nn.Dropout`` under ``module`` (0 when it has none).

    Every ESPnet input layer ends with its positional encoding, whose dropout is applied to
    the frames and to the relative positions it returns; that is the last one.
    """
    rates = [sub.p for sub in module.modules() if isinstance(sub, torch.nn.Dropout)]
    return rates[-1] if rates else 0.0
