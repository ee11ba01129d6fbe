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
from typing import List, Optional

from espnet_dynenc.checkpoint_jobs.dev_scoring import METRICS
from espnet_dynenc.checkpoint_jobs.prune_on_demand import PlanRequest, plan_pruning
from espnet_dynenc.entry import add_data_arguments, add_model_arguments, entry_point
from espnet_dynenc.pruning.strategies import STRATEGIES


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    add_data_arguments(parser, "the dev speech and text: dump/raw/dev/wav.scp,speech,sound and dump/raw/dev/text,text,text")
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


@entry_point("prune_on_demand")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    request = PlanRequest(
        asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
        data_path_and_name_and_type=args.data_path_and_name_and_type, depths=args.depths,
        strategies=args.strategies, output_dir=args.output_dir, key_file=args.key_file,
        max_utterances=args.max_utterances, greedy_metric=args.greedy_metric, subnet=args.subnet,
        variance_kept=args.variance_kept, max_frames=args.max_frames, batch_size=args.batch_size,
        device="cuda" if args.ngpu > 0 else "cpu", num_workers=args.num_workers, seed=args.seed)
    plan = plan_pruning(request)
    for strategy, depth, removed in plan.removal_sets():
        print(f"{strategy}\t{depth}\t{' '.join(map(str, removed))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
