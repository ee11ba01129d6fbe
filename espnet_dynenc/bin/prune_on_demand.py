"""Plan layer pruning on demand (Lee, Kang, Watanabe, Interspeech 2021) for a trained model.

For every strategy and target depth, chooses the encoder blocks to remove (0-based, as
``ctc_greedy_inference --skip_blocks`` takes them) and scores the pruned encoder on a dev
set with greedy CTC. Strategies (see ``espnet_dynenc.pruning.strategies``):

    top          drop the last blocks
    every_other  drop evenly spaced blocks (LayerDrop's rule)
    svcca        drop the blocks whose input and output are most similar (SVCCA on dev)
    greedy       drop one block at a time, the one that raises the dev score least

The frontend runs once per dev batch and each removal set is scored once, however many
depths share it. Prints one line per plan (strategy, depth, removed blocks) and writes
into ``--output_dir``::

    pruning_plan.yaml   removed blocks per strategy and depth, the full model's scores,
                        the SVCCA redundancy per block and the greedy removal order
    dev_scores.tsv      strategy, depth, skip_blocks, parameters, ctc_loss, cer

Each file is written under a temporary name and renamed when complete.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import yaml

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc before ESPnet reads the config

from espnet2.utils.types import str2triple_str, str_or_none

from espnet_dynenc.analysis.svcca import block_redundancy, collect_block_outputs
from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.pruning.dev_data import check_subnet, check_svcca_options, load_dev_batches, load_model
from espnet_dynenc.pruning.dev_scoring import METRICS, DevScorer
from espnet_dynenc.pruning.strategies import STRATEGIES, blocks_to_remove

Plan = Dict[str, Dict[int, Tuple[int, ...]]]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asr_train_config", required=True, help="config.yaml of the trained model")
    parser.add_argument("--asr_model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help="dev speech and text, e.g. dump/raw/dev/wav.scp,speech,sound and "
                             "dump/raw/dev/text,text,text (repeatable)")
    parser.add_argument("--key_file", type=str_or_none, default=None, help="use only these utterances")
    parser.add_argument("--max_utterances", type=int, default=200, help="dev utterances to score on")
    parser.add_argument("--depths", type=int, nargs="+", required=True, help="blocks to keep, e.g. 10 8 6 4")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES),
                        help="strategies to plan (default: all)")
    parser.add_argument("--greedy_metric", default="ctc_loss", choices=list(METRICS),
                        help="dev score the greedy strategy minimises")
    parser.add_argument("--subnet", type=int, default=None, help="subnet size to prune (default: the supernet)")
    parser.add_argument("--variance_kept", type=float, default=0.99, help="SVD variance kept by SVCCA")
    parser.add_argument("--max_frames", type=int, default=20000,
                        help="frames SVCCA uses (a random subset); 0 keeps all")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of SVCCA's frame subset")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


def unique(values: Sequence) -> list:
    """Values in first-seen order without repeats."""
    return list(dict.fromkeys(values))


def check_depths(depths: Sequence[int], num_blocks: int) -> List[int]:
    for depth in depths:
        if not 0 <= depth <= num_blocks:
            raise ValueError(f"--depths: {depth} is not in 0..{num_blocks} (the encoder has {num_blocks} blocks)")
    return unique(depths)


def make_plan(strategies: Sequence[str], depths: Sequence[int], num_blocks: int, **needs) -> Plan:
    """Removed blocks per strategy and depth."""
    return {strategy: {depth: blocks_to_remove(strategy, num_blocks, depth, **needs) for depth in depths}
            for strategy in strategies}


def scores_tsv(plan: Plan, scorer: DevScorer, model, size: int) -> str:
    lines = ["strategy\tdepth\tskip_blocks\tparameters\tctc_loss\tcer"]
    for strategy, by_depth in plan.items():
        for depth, removed in by_depth.items():
            scores = scorer.scores(removed)
            parameters = model.subnet_parameter_count(size, removed)
            lines.append(f"{strategy}\t{depth}\t{' '.join(map(str, removed))}\t{parameters}"
                         f"\t{scores.ctc_loss:.6f}\t{scores.cer:.6f}")
    return "\n".join(lines) + "\n"


def plan_yaml(args: argparse.Namespace, plan: Plan, scorer: DevScorer, size: int, num_blocks: int,
              redundancy: Optional[List[float]], greedy_order: Optional[List[int]]) -> str:
    full = scorer.scores(())
    document = {
        "asr_train_config": str(args.asr_train_config),
        "asr_model_file": str(args.asr_model_file),
        "subnet": size,
        "num_blocks": num_blocks,
        "dev_utterances": full.num_utterances,
        "greedy_metric": args.greedy_metric,
        "full_model": {"ctc_loss": full.ctc_loss, "cer": full.cer},
        "skip_blocks": {strategy: {depth: list(removed) for depth, removed in by_depth.items()}
                        for strategy, by_depth in plan.items()},
    }
    if redundancy is not None:
        document["svcca_redundancy"] = redundancy
    if greedy_order is not None:
        document["greedy_removal_order"] = greedy_order
    return yaml.safe_dump(document, sort_keys=False)


@torch.no_grad()
def prune(args: argparse.Namespace) -> Plan:
    check_svcca_options(args.max_frames, args.variance_kept)
    device = "cuda" if args.ngpu > 0 else "cpu"
    model, train_args = load_model(args.asr_train_config, args.asr_model_file, device)
    size = check_subnet(model, args.subnet)
    num_blocks = model.encoder.num_blocks
    depths = check_depths(args.depths, num_blocks)
    strategies = unique(args.strategies)
    batches = load_dev_batches(train_args, args.data_path_and_name_and_type, args.key_file, args.batch_size,
                               args.max_utterances, with_text=True, num_workers=args.num_workers)
    scorer = DevScorer(model, batches, size)
    redundancy = greedy_order = None
    if "svcca" in strategies:
        hidden = collect_block_outputs(model, batches, size, args.max_frames or None, args.seed)
        redundancy = [float(v) for v in block_redundancy(hidden, args.variance_kept)]
        del hidden  # activations of every layer: free them before the greedy search
    score = scorer.metric(args.greedy_metric) if "greedy" in strategies else None
    plan = make_plan(strategies, depths, num_blocks, redundancy=redundancy, score=score)
    if score is not None:
        deepest = num_blocks - min(depths)
        greedy_order = STRATEGIES["greedy"].choose(num_blocks, deepest, score=score)
    logging.info("scored %d removal sets on %d dev utterances", scorer.evaluations,
                 scorer.scores(()).num_utterances)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / "dev_scores.tsv", scores_tsv(plan, scorer, model, size))
    write_text_atomically(out_dir / "pruning_plan.yaml", plan_yaml(args, plan, scorer, size, num_blocks, redundancy, greedy_order))
    for strategy, by_depth in plan.items():
        for depth, removed in by_depth.items():
            print(f"{strategy}\t{depth}\t{' '.join(map(str, removed))}")
    return plan


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        prune(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"prune_on_demand: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
