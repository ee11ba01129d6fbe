"""Write COMPARISON.md and comparison.png from the runs of run_comparison.sh.

    python -m espnet_dynenc.bin.compare_results --manifest exp/comparison/manifest.tsv \\
        --output_dir . [--test_sets "test"] [--command "./run_comparison.sh ..."] [--wall_seconds 5400]

The manifest has one line per run: ``<method> <role> <seed> <experiment dir>`` (roles:
supernet, alone, pruned, dmao; see ``espnet_dynenc.recipe.comparison``). The plot shows
WER on the first test set against FLOPs per second of audio. The test sets are, unless
given, those every run has decoded. Both files are written whole or not at all.
"""
import argparse
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.recipe.comparison import (
    DECODE_DIR,
    collect,
    comparison_markdown,
    discover_test_sets,
    plot_comparison,
    read_manifest,
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="runs: <method> <role> <seed> <exp dir>")
    parser.add_argument("--test_sets", default=None,
                        help='test sets, e.g. "test" or "test_clean test_other" (default: those every run decoded)')
    parser.add_argument("--output_dir", type=Path, required=True, help="COMPARISON.md and comparison.png go here")
    parser.add_argument("--decode_dir", default=DECODE_DIR, help="decoding directory name in each experiment")
    parser.add_argument("--command", default=None, help="the command that made the comparison (for the report)")
    parser.add_argument("--wall_seconds", type=float, default=None, help="wall time of the whole comparison")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.test_sets is not None and not args.test_sets.split():
        print("compare_results: --test_sets is empty", file=sys.stderr)
        return 1
    if not args.manifest.is_file():
        print(f"compare_results: --manifest: no such file: {args.manifest}", file=sys.stderr)
        return 1
    try:
        runs = read_manifest(args.manifest)
        test_sets = args.test_sets.split() if args.test_sets else discover_test_sets(runs, args.decode_dir)
        data = collect(runs, test_sets, args.decode_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"compare_results: {err}", file=sys.stderr)
        return 1
    command = args.command or " ".join(shlex.quote(a) for a in sys.argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    markdown = comparison_markdown(data, test_sets, command, args.wall_seconds)
    write_text_atomically(args.output_dir / "COMPARISON.md", markdown)
    plot_comparison(data, test_sets[0], args.output_dir / "comparison.png")
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
