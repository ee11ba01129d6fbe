"""``lm_weights.yaml``: the language-model weight each decoded output uses, tuned on the dev set.

The best shallow-fusion weight differs per size: a small subnet's CTC scores are less
sure of themselves, so the LM is worth more to it. asr.sh decodes the dev set with every
weight of ``--lm_weight_grid``, keeps the best weight per output (a size, or
``pruned/<strategy>/<depth>``) in this file in the decoding directory, and the beam decoder
reads it (``--lm_weights``) to decode the test sets. The file records how it was chosen::

    dev_set: dev
    grid: [0.0, 0.3, 0.6]
    lm_weight: {'8': 0.6, '16': 0.3, '24': 0.3}      # the choice, per output
    dev_wer: {'8': {0.0: 14.2, 0.3: 12.9, 0.6: 12.5}, ...}
"""
import os
from typing import Dict, Mapping, Sequence

import yaml

from espnet_dynenc.atomic_files import write_text_atomically

LM_WEIGHTS_FILE = "lm_weights.yaml"


def write_lm_weights(
    path: os.PathLike,
    best: Mapping[str, float],
    grid: Sequence[float],
    dev_set: str,
    dev_wer: Mapping[str, Mapping[float, float]],
) -> None:
    """Write the choice and what it was chosen from (whole or not at all)."""
    document = {
        "dev_set": dev_set,
        "grid": [float(w) for w in grid],
        "lm_weight": {str(output): float(weight) for output, weight in best.items()},
        "dev_wer": {str(output): {float(w): round(float(wer), 2) for w, wer in row.items()}
                    for output, row in dev_wer.items()},
    }
    write_text_atomically(path, yaml.safe_dump(document, sort_keys=False))


def read_lm_weights(path: os.PathLike) -> Dict[str, float]:
    """Output -> lm_weight; a file without a valid ``lm_weight`` mapping is refused by name."""
    with open(path, encoding="utf-8") as f:
        document = yaml.safe_load(f) or {}
    weights = document.get("lm_weight") if isinstance(document, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"--lm_weights {path}: has no 'lm_weight' mapping of output: weight")
    try:
        return {str(output): float(weight) for output, weight in weights.items()}
    except (TypeError, ValueError):
        raise ValueError(f"--lm_weights {path}: 'lm_weight' values must be numbers, got {weights}") from None
