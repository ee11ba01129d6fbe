"""What a run's decodings measure: one :class:`Measured` per size, or per pruned depth and strategy.

Read from the files asr.sh leaves in a decoding directory (``decode_stats.yaml``, sclite's
``result.txt`` and its ``ref.trn``/``hyp.trn`` alignment for the word errors of every
utterance, the pruning plan and its ``dev_scores.tsv``). Kept apart from the training cost
because it reads decodings only: a run's results and its cost come from different files and
either can be read again without the other.
"""
import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_dynenc.decode.outputs import (
    DecodeOutput, dev_scores_file, finished_sizes, pruning_plan_file)
from espnet_dynenc.pruning.plan import PruningPlan
from espnet_dynenc.recipe.comparison.runs import DECODE_DIR, Run
from espnet_dynenc.recipe.results_table import load_stats, read_sum_avg
from espnet_dynenc.scoring.sclite_format import score_files

@dataclass
class Measured:
    """One decoded configuration of one run: a size, or a size with blocks removed."""

    units: int
    parameters: Optional[float]
    flops: Optional[float]
    wer: Dict[str, Optional[float]] = field(default_factory=dict)
    cer: Dict[str, Optional[float]] = field(default_factory=dict)
    chosen: Optional[str] = None  # the strategy a "best" pruned result stands for
    checkpoint: Optional[str] = None  # the file it was decoded from
    # per test set: utterance id -> [word errors, reference words]
    utterances: Dict[str, Dict[str, List[int]]] = field(default_factory=dict)


def _error_rate(folder: Path, kind: str) -> Optional[float]:
    path = folder / f"score_{kind}" / "result.txt"
    return read_sum_avg(path).errors if path.is_file() else None


def utterance_errors(folder: Path) -> Dict[str, List[int]]:
    """Word errors and reference words of every utterance scored in ``folder/score_wer``
    (the alignment sclite makes); empty when the .trn files are not there."""
    ref, hyp = folder / "score_wer" / "ref.trn", folder / "score_wer" / "hyp.trn"
    if not (ref.is_file() and hyp.is_file()):
        return {}
    return {utt.utt_id: [utt.counts.errors, utt.counts.ref_words]
            for speaker in score_files(ref, hyp) for utt in speaker.utterances}


def measure(folders: Dict[str, Path], units: int) -> Optional[Measured]:
    """The numbers of one decoded configuration (``folders``: test set -> its folder);
    None if it was never decoded."""
    stats = [load_stats(folder) for folder in folders.values()]
    known = next((s for s in stats if s), None)
    if known is None:
        return None
    per_utterance = {t: utterance_errors(f) for t, f in folders.items()}
    return Measured(units, known.get("parameters"), known.get("flops_per_second"),
                    {t: _error_rate(f, "wer") for t, f in folders.items()},
                    {t: _error_rate(f, "cer") for t, f in folders.items()},
                    checkpoint=known.get("checkpoint"),
                    utterances={t: errors for t, errors in per_utterance.items() if errors})


def size_results(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR) -> Dict[int, Measured]:
    """Every size decoded for ``run`` (in units)."""
    root = run.exp_dir / decode_dir
    out = {}
    for size in finished_sizes(root / test_set for test_set in test_sets):
        measured = measure({t: DecodeOutput.whole(size).folder(root / t) for t in test_sets}, size)
        if measured is not None:
            out[size] = measured
    return out


def _dev_choice(rows: List[dict]) -> Optional[str]:
    def key(row):
        return (float(row["cer"]), float(row["ctc_loss"]), row["strategy"])
    return min(rows, key=key)["strategy"] if rows else None


def pruned_results(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR
                   ) -> Dict[int, Dict[str, Measured]]:
    """``{blocks kept: {strategy: Measured}}``, plus under ``"best"`` the strategy with the
    lowest dev CER (then dev CTC loss) at that depth."""
    root = run.exp_dir / decode_dir
    plan_path = pruning_plan_file(root)
    if not plan_path.is_file():
        return {}
    plan = PruningPlan.load(plan_path)
    per_block = plan.subnet // plan.num_blocks
    dev: Dict[int, List[dict]] = {}
    scores = dev_scores_file(root)
    if scores.is_file():
        with open(scores, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                dev.setdefault(int(row["depth"]), []).append(row)
    out: Dict[int, Dict[str, Measured]] = {}
    for strategy, depth, _ in plan.removal_sets():
        folders = {t: DecodeOutput.pruned(strategy, depth).folder(root / t) for t in test_sets}
        measured = measure(folders, depth * per_block)
        if measured is not None:
            out.setdefault(depth, {})[strategy] = measured
    for depth, by_strategy in out.items():
        best = _dev_choice([r for r in dev.get(depth, []) if r["strategy"] in by_strategy])
        if best is not None:
            by_strategy["best"] = replace(by_strategy[best], chosen=best)
    return out
