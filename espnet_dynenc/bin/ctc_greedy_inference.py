"""Decode a data set with batched greedy CTC, for several subnet sizes in one run.

The features and the subsampling frontend run once per batch; every requested size then
runs its own blocks and CTC head. For each size S it writes ESPnet's files::

    <output_dir>/<S>/text, token, token_int, score     (lines "<utt> <value>")
    <output_dir>/<S>/decode_stats.yaml                 (rtf, parameters, flops_per_second, ...)

With ``--pruning_plan`` (``prune_on_demand``'s pruning_plan.yaml) it also decodes the
plan's subnet with the blocks of every strategy and depth removed (layer pruning on
demand), into ``<output_dir>/pruned/<strategy>/<depth>/`` with the same files, and that
subnet whole (its reference). All targets share each batch, so their real-time factors
are measured side by side; targets that remove the same blocks are computed once.

The real-time factor of a size counts the shared frontend plus that size's own blocks,
head and search: what a deployment of that size alone would spend. Outputs are written
under temporary names and renamed when the whole set is decoded.
"""
import argparse
import logging
import sys
from typing import List, Optional

import yaml
from espnet2.utils.types import str2triple_str, str_or_none

from espnet_dynenc.decode.batch_decoding import DecodeRequest, decode_data_set


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--asr_train_config", required=True, help="config.yaml of the trained model")
    parser.add_argument("--asr_model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help="e.g. dump/raw/test/wav.scp,speech,sound (repeatable)")
    parser.add_argument("--key_file", type=str_or_none, default=None, help="decode only these utterances")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--subnets", type=str, default="",
                        help='sizes to decode, e.g. "16 32 48" (default: every size of the model)')
    parser.add_argument("--skip_blocks", type=int, nargs="*", default=[],
                        help="0-based encoder blocks removed at run time (all sizes)")
    parser.add_argument("--pruning_plan", type=str_or_none, default=None,
                        help="pruning_plan.yaml of prune_on_demand: also decode every strategy and depth in it")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float16", "bfloat16", "float32", "float64"])
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--fs", type=int, default=None,
                        help="sampling rate of the audio, for the RTF (default: the training config's "
                             "frontend_conf.fs, else 16000)")
    parser.add_argument("--flops_reference_seconds", type=float, default=10.0,
                        help="utterance duration at which FLOPs per second are counted")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    parser.add_argument("--config", default=None,
                        help="YAML file of default values for these options (asr.sh's --inference_config)")
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command line over ``--config`` defaults; an unknown key in the config is an error."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.config is None:
        return args
    with open(args.config, encoding="utf-8") as f:
        defaults = yaml.safe_load(f) or {}
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(defaults) - known)
    if unknown:
        parser.error(f"--config {args.config}: unknown option(s) {unknown}")
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    request = DecodeRequest(
        asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
        data_path_and_name_and_type=args.data_path_and_name_and_type, output_dir=args.output_dir,
        key_file=args.key_file, subnets=args.subnets, skip_blocks=args.skip_blocks, pruning_plan=args.pruning_plan,
        batch_size=args.batch_size, device="cuda" if args.ngpu > 0 else "cpu", dtype=args.dtype,
        num_workers=args.num_workers, fs=args.fs, flops_reference_seconds=args.flops_reference_seconds)
    try:
        decode_data_set(request)
    except (ValueError, FileNotFoundError) as error:
        print(f"ctc_greedy_inference: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
