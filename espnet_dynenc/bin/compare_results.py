"""Write COMPARISON.md and comparison.png from the runs of run_comparison.sh.

    python -m espnet_dynenc.bin.compare_results --manifest exp/comparison/manifest.tsv \\
        --output_dir . [--report ABLATION.md] [--runs_dir comparison_runs] [--test_sets "test"] \\
        [--command "./run_comparison.sh ..."] [--wall_seconds 5400]
    python -m espnet_dynenc.bin.compare_results --manifest one_run.tsv --runs_dir comparison_runs \\
        --summarise_only
    python -m espnet_dynenc.bin.compare_results --manifest one_run.tsv --runs_dir comparison_runs \\
        --refresh_costs
    python -m espnet_dynenc.bin.compare_results --manifest one_run.tsv --runs_dir comparison_runs \\
        --refresh_results

The manifest has one line per run: ``<method> <role>[@<regime>] <seed> <experiment dir>``
(roles: supernet, alone, pruned, dmao; a regime, e.g. ``alone@2x``, keeps runs of another
schedule apart: see ``espnet_dynenc.recipe.comparison``). With
``--runs_dir``, a run whose summary (``<method>_seed<seed>.json``) is there is read from
it, whether or not its experiment dir exists, and every other run is summarised there
from its experiment dir: the summaries are what the tables need, small enough to keep in
the repository, so the report can be written again on another machine.
``--summarise_only`` writes the summaries and no report. ``--refresh_costs`` reads each
run's training cost again from its experiment dir into its existing summary (the rest of
the summary is kept) and writes no report: e.g. to count the pre-training of a run
fine-tuned from a converted model in a summary written before the cost counted it.
``--refresh_results`` summarises each run again from its experiment dir, keeping the test
sets and the measured run time of its summary, and writes no report: after a run's
checkpoints were averaged again (``average_checkpoints``) and decoded again. The plot shows WER on the first
test set against FLOPs per second of audio, and every claim's interval. The test sets
are, unless given, those every run has decoded. Every file is written whole or not at all.
"""
import argparse
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.comparison.report import comparison_markdown, plot_comparison
from espnet_dynenc.recipe.comparison.runs import DECODE_DIR, read_manifest
from espnet_dynenc.recipe.comparison.summaries import (collect, discover_test_sets, refresh_costs, refresh_results,
                                                        summary_path)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True, help="runs: <method> <role> <seed> <exp dir>")
    parser.add_argument("--test_sets", default=None,
                        help='test sets, e.g. "test" or "test_clean test_other" (default: those every run decoded)')
    parser.add_argument("--output_dir", type=Path, default=None, help="the report and its plot go here")
    parser.add_argument("--report", default="COMPARISON.md",
                        help="the report's file name in --output_dir (e.g. ABLATION.md for another plan); the plot "
                             "is its lower-cased stem + .png")
    parser.add_argument("--runs_dir", type=Path, default=None,
                        help="per-run summaries: read where present, written for the other runs")
    parser.add_argument("--summarise_only", action="store_true",
                        help="only write the summaries of the manifest's runs into --runs_dir")
    parser.add_argument("--refresh_costs", action="store_true",
                        help="only read the training cost of the manifest's runs again from their experiment dirs "
                             "into their summaries in --runs_dir")
    parser.add_argument("--refresh_results", action="store_true",
                        help="only summarise the manifest's runs again from their experiment dirs into their summaries "
                             "in --runs_dir, keeping each summary's test sets and run time")
    parser.add_argument("--run_seconds", type=float, default=None,
                        help="with --summarise_only: the wall time of the (one) run, kept in its summary")
    parser.add_argument("--decode_dir", default=DECODE_DIR, help="decoding directory name in each experiment")
    parser.add_argument("--command", default=None, help="the command that made the comparison (for the report)")
    parser.add_argument("--wall_seconds", type=float, default=None,
                        help="wall time of the whole comparison (default: the runs' times summed from their summaries)")
    return parser


def check_options(args: argparse.Namespace) -> None:
    """What the parser cannot say alone: options that need each other, the report's name."""
    if args.test_sets is not None and not args.test_sets.split():
        raise ValueError("--test_sets is empty")
    if not args.manifest.is_file():
        raise FileNotFoundError(f"--manifest: no such file: {args.manifest}")
    if args.summarise_only and args.runs_dir is None:
        raise ValueError("--summarise_only needs --runs_dir")
    for name in ("refresh_costs", "refresh_results"):
        if getattr(args, name) and (args.runs_dir is None or args.summarise_only):
            raise ValueError(f"--{name} needs --runs_dir and goes without --summarise_only")
    if args.refresh_costs and args.refresh_results:
        raise ValueError("--refresh_costs and --refresh_results go one at a time (--refresh_results reads the cost too)")
    if not (args.summarise_only or args.refresh_costs or args.refresh_results) and args.output_dir is None:
        raise ValueError("--output_dir is required (or --summarise_only / --refresh_costs / --refresh_results "
                         "with --runs_dir)")
    report = Path(args.report)
    if report.name != args.report or report.suffix != ".md":
        raise ValueError(f"--report must be a file name ending in .md, got '{args.report}'")


@entry_point("compare_results")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    check_options(args)
    report = Path(args.report)
    runs = read_manifest(args.manifest)
    if args.refresh_costs:
        for path in refresh_costs(runs, args.runs_dir):
            print(f"compare_results: cost refreshed: {path}")
        return 0
    if args.refresh_results:
        for path in refresh_results(runs, args.runs_dir, args.decode_dir):
            print(f"compare_results: results refreshed: {path}")
        return 0
    test_sets = args.test_sets.split() if args.test_sets else discover_test_sets(runs, args.decode_dir, args.runs_dir)
    data = collect(runs, test_sets, args.decode_dir, args.runs_dir, run_seconds=args.run_seconds)
    if args.summarise_only:
        for run in runs:
            print(f"compare_results: {run.method} seed {run.seed}: {summary_path(args.runs_dir, run)}")
        return 0
    command = args.command or " ".join(shlex.quote(a) for a in sys.argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    wall = args.wall_seconds if args.wall_seconds is not None else data.total_run_seconds()
    markdown = comparison_markdown(data, test_sets, command, wall)
    write_text_atomically(args.output_dir / report.name, markdown)
    plot_comparison(data, test_sets[0], args.output_dir / f"{report.stem.lower()}.png")
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
