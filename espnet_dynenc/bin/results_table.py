"""Stage 13: write RESULTS.md, one row per subnet size, from a decoding directory.

    python -m espnet_dynenc.bin.results_table --decode_dir exp/x/decode_y \\
        --test_sets "dev test" [--subnets "16 32 48"] --output exp/x/RESULTS.md

Columns: size, parameters, FLOPs per second of audio, WER and CER per test set (from
``<set>/<size>/score_{wer,cer}/result.txt``) and the real-time factor per test set (from
``<set>/<size>/decode_stats.yaml``). With ``--prune_depths``, a second section compares
the pruning strategies per depth (``<set>/pruned/<strategy>/<depth>/``). When other
decodings of the same model are scored too (greedy, beam, beam + LM: each its own
``decode_*`` directory), a last section compares them per size, with their RTF. Missing
numbers show as n/a.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.decodings_table import decodings_markdown, describe_decoding
from espnet_dynenc.recipe.pruning_table import pruning_markdown
from espnet_dynenc.recipe.results_table import parse_sizes, results_markdown, sizes_decoded


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decode_dir", type=Path, required=True)
    parser.add_argument("--test_sets", required=True, help="space-separated test set names")
    parser.add_argument("--subnets", default="", help="sizes to list (default: every decoded size)")
    parser.add_argument("--prune_depths", default="", help="depths decoded with blocks removed (a second table)")
    parser.add_argument("--prune_strategies", default="top every_other svcca greedy",
                        help="strategies decoded with blocks removed")
    parser.add_argument("--model_file", default="", help="checkpoint that was decoded, for the header")
    parser.add_argument("--device", default="cpu", help="where decoding ran, for the header")
    parser.add_argument("--output", default="-", help="file to write; '-' for stdout")
    return parser


@entry_point("results_table")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if not args.decode_dir.is_dir():
        raise FileNotFoundError(f"no such directory: {args.decode_dir}")
    test_sets = args.test_sets.split()
    sizes = parse_sizes(args.subnets)
    pruning = pruning_markdown(args.decode_dir, test_sets, parse_sizes(args.prune_depths),
                               args.prune_strategies.split())
    compared = decodings_markdown(args.decode_dir.parent, test_sets, sizes)
    decoding = describe_decoding(args.decode_dir, test_sets, sizes or sizes_decoded(args.decode_dir, test_sets))
    text = results_markdown(args.decode_dir, test_sets, sizes, args.model_file, args.device,
                            pruning + compared, decoding)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
