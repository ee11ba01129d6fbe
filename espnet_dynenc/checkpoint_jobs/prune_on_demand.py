"""Plan layer pruning on demand for a trained model: the work behind ``bin/prune_on_demand``.

For every strategy and target depth, the blocks to remove are chosen
(``espnet_dynenc.pruning.strategies``) and the pruned encoder is scored on dev data
(``dev_scoring``). The frontend runs once per dev
batch and each removal set is scored once, however many depths share it. The result is a
:class:`~espnet_dynenc.pruning.plan.PruningPlan` (``pruning_plan.yaml``) plus the dev
scores of every removal set (``dev_scores.tsv``).
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from espnet_dynenc.analysis.svcca import block_redundancy, collect_block_outputs
from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.checkpoint_jobs.dev_data import check_subnet, check_svcca_options, load_dev_batches
from espnet_dynenc.checkpoint_jobs.dev_scoring import DevScorer
from espnet_dynenc.checkpoint_jobs.loading import load_model
from espnet_dynenc.pruning.plan import PruningPlan
from espnet_dynenc.pruning.strategies import STRATEGIES, blocks_to_remove

Removals = Dict[str, Dict[int, Tuple[int, ...]]]


@dataclass
class PlanRequest:
    """What to plan: the model, the dev data and the choices (the CLI's options)."""

    asr_train_config: str
    asr_model_file: str
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]]
    depths: Sequence[int]
    strategies: Sequence[str]
    output_dir: str
    key_file: Optional[str] = None
    max_utterances: Optional[int] = 200
    greedy_metric: str = "ctc_loss"
    subnet: Optional[int] = None
    variance_kept: float = 0.99
    max_frames: int = 20000
    batch_size: int = 8
    device: str = "cpu"
    num_workers: int = 0
    seed: int = 0


def unique(values: Sequence) -> list:
    """Values in first-seen order without repeats."""
    return list(dict.fromkeys(values))


def check_depths(depths: Sequence[int], num_blocks: int) -> List[int]:
    for depth in depths:
        if not 0 <= depth <= num_blocks:
            raise ValueError(f"--depths: {depth} is not in 0..{num_blocks} (the encoder has {num_blocks} blocks)")
    return unique(depths)


def make_removals(strategies: Sequence[str], depths: Sequence[int], num_blocks: int, **needs) -> Removals:
    """Removed blocks per strategy and depth."""
    return {strategy: {depth: blocks_to_remove(strategy, num_blocks, depth, **needs) for depth in depths}
            for strategy in strategies}


def scores_tsv(removals: Removals, scorer: DevScorer, model, size: int) -> str:
    lines = ["strategy\tdepth\tskip_blocks\tparameters\tctc_loss\tcer"]
    for strategy, by_depth in removals.items():
        for depth, removed in by_depth.items():
            scores = scorer.scores(removed)
            parameters = model.subnet_parameter_count(size, removed)
            lines.append(f"{strategy}\t{depth}\t{' '.join(map(str, removed))}\t{parameters}"
                         f"\t{scores.ctc_loss:.6f}\t{scores.cer:.6f}")
    return "\n".join(lines) + "\n"


@torch.no_grad()
def plan_pruning(request: PlanRequest) -> PruningPlan:
    """Choose, score and write (``pruning_plan.yaml``, ``dev_scores.tsv``) every removal set."""
    check_svcca_options(request.max_frames, request.variance_kept)
    model, train_args = load_model(request.asr_train_config, request.asr_model_file, request.device)
    size = check_subnet(model, request.subnet)
    num_blocks = model.encoder.num_blocks
    depths = check_depths(request.depths, num_blocks)
    strategies = unique(request.strategies)
    batches = load_dev_batches(train_args, request.data_path_and_name_and_type, request.key_file,
                               request.batch_size, request.max_utterances, with_text=True,
                               num_workers=request.num_workers)
    scorer = DevScorer(model, batches, size)
    redundancy = greedy_order = None
    if "svcca" in strategies:
        hidden = collect_block_outputs(model, batches, size, request.max_frames or None, request.seed)
        redundancy = [float(v) for v in block_redundancy(hidden, request.variance_kept)]
        del hidden  # activations of every layer: free them before the greedy search
    score = scorer.metric(request.greedy_metric) if "greedy" in strategies else None
    removals = make_removals(strategies, depths, num_blocks, redundancy=redundancy, score=score)
    if score is not None:
        deepest = num_blocks - min(depths)
        greedy_order = STRATEGIES["greedy"].choose(num_blocks, deepest, score=score)
    full = scorer.scores(())
    logging.info("scored %d removal sets on %d dev utterances", scorer.evaluations, full.num_utterances)
    plan = PruningPlan(
        subnet=size, num_blocks=num_blocks, skip_blocks=removals,
        asr_train_config=str(request.asr_train_config), asr_model_file=str(request.asr_model_file),
        dev_utterances=full.num_utterances, greedy_metric=request.greedy_metric,
        full_model={"ctc_loss": full.ctc_loss, "cer": full.cer},
        svcca_redundancy=redundancy, greedy_removal_order=greedy_order,
    )
    out_dir = Path(request.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / "dev_scores.tsv", scores_tsv(removals, scorer, model, size))
    plan.save(out_dir / "pruning_plan.yaml")
    return plan
