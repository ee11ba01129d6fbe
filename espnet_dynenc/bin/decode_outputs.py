"""The decoding outputs of a data set, and the name of a decoding directory, for the recipe driver.

    python -m espnet_dynenc.bin.decode_outputs list --dir exp/x/decode_y/test \\
        [--subnets "16 32"] [--prune_depths "4 2" --prune_strategies "top greedy"] \\
        [--pruning_plan exp/x/decode_y/pruning/pruning_plan.yaml] [--missing]
    python -m espnet_dynenc.bin.decode_outputs name --model valid.cer_ctc.ave.pth \\
        [--decoding beam] [--inference_config conf/decode.yaml] [--inference_args=...] \\
        [--lm_exp exp/lm_x --inference_lm valid.loss.ave.pth [--lm_weight_tuned]] [--per_size] \\
        [--inference_tag TAG]
    python -m espnet_dynenc.bin.decode_outputs plan --decode_dir exp/x/decode_y

``list`` prints the finished outputs of the data set (``16``, ``pruned/top/4``: one folder
relative to ``--dir`` a line, sizes first), limited to the sizes of ``--subnets`` (and the
subnet of ``--pruning_plan``, the reference of its pruned forms) and to the strategies and
depths asked for; ``--prune_depths ""`` leaves the pruned outputs out. With ``--missing``
it prints instead each size, strategy and depth asked for that is not finished. ``name``
prints the decoding directory's name (see ``espnet_dynenc.decode.outputs.decode_dir_name``);
``plan`` the path of a decoding directory's pruning plan (stage 12 writes it, 13 reads it).
asr.sh asks this instead of rebuilding paths in shell. A bad directory or layout exits with
status 1 and names it.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_dynenc.decode.outputs import OutputRequest, decode_dir_name, finished_outputs, pruning_plan_file
from espnet_dynenc.entry import entry_point


def _numbers(text: str, option: str) -> Tuple[int, ...]:
    try:
        return tuple(int(word) for word in text.replace(",", " ").split())
    except ValueError:
        raise ValueError(f"{option}: '{text}' is not a list of whole numbers") from None


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the finished outputs of one data set's decoding directory")
    listing.add_argument("--dir", type=Path, required=True, help="<decode dir>/<data set>")
    listing.add_argument("--subnets", default="", help="sizes to list (default: every size)")
    listing.add_argument("--prune_depths", default=None,
                         help='depths of the pruned outputs to list (default: every one; "": none)')
    listing.add_argument("--prune_strategies", default=None, help="strategies of the pruned outputs (default: every one)")
    listing.add_argument("--pruning_plan", type=Path, default=None,
                         help="a plan whose subnet is listed with --subnets (when the file exists)")
    listing.add_argument("--missing", action="store_true", help="print what is asked for and not finished instead")
    name = commands.add_parser("name", help="the name of asr.sh's decoding directory")
    name.add_argument("--model", required=True, help="the checkpoint decoded, e.g. valid.cer_ctc.ave.pth")
    name.add_argument("--decoding", default="greedy", choices=("greedy", "beam"))
    name.add_argument("--inference_config", default="")
    name.add_argument("--inference_args", default="", help="give it as --inference_args=... (it starts with --)")
    name.add_argument("--lm_exp", default="", help="the LM's experiment directory, when decoding with an LM")
    name.add_argument("--inference_lm", default="", help="the LM checkpoint in --lm_exp")
    name.add_argument("--lm_weight_tuned", action="store_true")
    name.add_argument("--per_size", action="store_true", help="sizes are decoded from their own checkpoints")
    name.add_argument("--inference_tag", default="", help="the name's tag, given (the rest is then unused)")
    plan = commands.add_parser("plan", help="the path of a decoding directory's pruning plan")
    plan.add_argument("--decode_dir", type=Path, required=True, help="exp/<asr exp>/<decoding directory>")
    return parser


def request_of(args: argparse.Namespace) -> OutputRequest:
    sizes = _numbers(args.subnets, "--subnets")
    if sizes and args.pruning_plan is not None and args.pruning_plan.is_file():
        from espnet_dynenc.pruning.plan import PruningPlan

        sizes += (PruningPlan.load(args.pruning_plan).subnet,)
    depths = None if args.prune_depths is None else _numbers(args.prune_depths, "--prune_depths")
    strategies = None if args.prune_strategies is None else tuple(args.prune_strategies.split())
    return OutputRequest(sizes, depths, strategies)


@entry_point("decode_outputs")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "name":
        print(decode_dir_name(args.model, args.decoding, args.inference_config, args.inference_args, args.lm_exp,
                              args.inference_lm, args.lm_weight_tuned, args.per_size, args.inference_tag))
        return 0
    if args.command == "plan":
        print(pruning_plan_file(args.decode_dir))
        return 0
    request = request_of(args)
    found = finished_outputs(args.dir)
    for output in request.missing(found) if args.missing else request.chosen(found):
        print(output.relative_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
