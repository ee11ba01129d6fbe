"""Stage 12, ``--lm_weight_grid``: the language-model weight of each output, chosen on the dev set.

asr.sh decodes the dev set once per weight of the grid, every size (and pruned depth) in
the same pass, into ``<tuning_dir>/<weight>/<dev_set>/<output>/``. Here each output's word
error rate is counted for every weight the way stage 13 scores (ESPnet's word tokenizer,
the cleaner on the reference only, a missing hypothesis scored as empty, sclite's
alignment) and the weight with the fewest errors is kept; a tie goes to the weight listed
first, so list the grid from the smallest weight to prefer the lighter LM. The choice goes
to ``lm_weights.yaml`` (see ``espnet_dynenc.decode.lm_weights``).
"""
import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_dynenc.decode.lm_weights import write_lm_weights
from espnet_dynenc.recipe.decode_merge import outputs_in
from espnet_dynenc.recipe.tables import read_table
from espnet_dynenc.recipe.trn_files import build_cleaner, build_tokenize, normalise_spaces
from espnet_dynenc.scoring.wer import ErrorCounts, align, count_errors


def parse_grid(text: str) -> List[Tuple[str, float]]:
    """``"0.0 0.3 0.6"`` -> [("0.0", 0.0), ...]: each weight as written (its folder name) and
    its value; an empty grid, a repeated value or a negative weight is refused."""
    grid = []
    for word in text.split():
        try:
            value = float(word)
        except ValueError:
            raise ValueError(f"--lm_weight_grid: '{word}' is not a number") from None
        if value < 0:
            raise ValueError(f"--lm_weight_grid: {word} is negative")
        grid.append((word, value))
    if not grid:
        raise ValueError("--lm_weight_grid is empty")
    values = [value for _, value in grid]
    if len(set(values)) != len(values):
        raise ValueError(f"--lm_weight_grid '{text}' lists a weight twice")
    return grid


def word_error_rate(refs: Mapping[str, str], hyps: Mapping[str, str], clean, tokenize) -> float:
    """WER (%) over ``refs``, as stage 13 counts it."""
    total = ErrorCounts()
    for utt, words in refs.items():
        ref = tokenize(clean(normalise_spaces(words)))
        hyp = tokenize(normalise_spaces(hyps.get(utt, "")))
        total = total + count_errors(align(ref, hyp))
    return 100.0 * total.errors / max(total.ref_words, 1)


def dev_word_error_rates(tuning_dir: Path, dev_set: str, grid: Sequence[Tuple[str, float]], ref_text: Path,
                         cleaner: Optional[str] = None,
                         non_linguistic_symbols: Optional[str] = None) -> Dict[str, Dict[float, float]]:
    """Output -> {weight: dev WER}; every weight must have decoded the same outputs."""
    refs = read_table(ref_text)
    clean, tokenize = build_cleaner(cleaner), build_tokenize("word", non_linguistic_symbols)
    table: Dict[str, Dict[float, float]] = {}
    first: Optional[List[str]] = None
    for name, value in grid:
        decoded = tuning_dir / name / dev_set
        outputs = outputs_in(decoded)  # the merged outputs only, not the jobs' own under logdir/
        if first is None:
            first = outputs
        elif outputs != first:
            raise ValueError(f"{decoded}: decoded {outputs}, but weight {grid[0][0]} decoded {first}")
        for output in outputs:
            hyps = read_table(decoded / output / "text")
            table.setdefault(output, {})[value] = word_error_rate(refs, hyps, clean, tokenize)
    if not table:
        raise ValueError(f"{tuning_dir}: no decoded outputs for the dev set {dev_set}")
    return table


def best_weights(table: Mapping[str, Mapping[float, float]]) -> Dict[str, float]:
    """Per output, the weight of lowest WER (the first listed among equals)."""
    return {output: min(row, key=lambda weight: row[weight]) for output, row in table.items()}


def choose_lm_weights(tuning_dir: Path, dev_set: str, grid_text: str, ref_text: Path, output: Path,
                      cleaner: Optional[str] = None, non_linguistic_symbols: Optional[str] = None) -> Dict[str, float]:
    """Score every weight on the dev set, write ``output`` (lm_weights.yaml), return the choice."""
    grid = parse_grid(grid_text)
    table = dev_word_error_rates(tuning_dir, dev_set, grid, ref_text, cleaner, non_linguistic_symbols)
    best = best_weights(table)
    write_lm_weights(output, best, [value for _, value in grid], dev_set, table)
    for name, weights in table.items():
        logging.info("%s: dev WER by lm_weight %s; chosen %s", name,
                     ", ".join(f"{w:g}: {wer:.2f}" for w, wer in weights.items()), best[name])
    return best
