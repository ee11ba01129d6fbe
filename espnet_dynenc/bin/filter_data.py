"""Stage 4: copy a formatted data directory without too short, too long or empty utterances.

    python -m espnet_dynenc.bin.filter_data --min_seconds 0.1 --max_seconds 20 --fs 16k \\
        dump/raw/org/train dump/raw/train

Keeps an utterance when int(min_seconds * fs) < num_samples < int(max_seconds * fs) and its
transcript has a word, as ESPnet's stage 4 does.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.filter_data import filter_data_dir, samples_range
from espnet_dynenc.recipe.format_audio import parse_rate


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min_seconds", type=float, required=True)
    parser.add_argument("--max_seconds", type=float, required=True)
    parser.add_argument("--fs", default="16k", help="sampling rate of the formatted audio")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    return parser


@entry_point("filter_data")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    low, high = samples_range(args.min_seconds, args.max_seconds, parse_rate(args.fs))
    report = filter_data_dir(args.src, args.dst, low, high)
    print(f"filter_data: {args.dst}: {report.summary()}")
    if report.kept == 0:
        raise ValueError(f"no utterance of {args.src} is left; check --min/--max_wav_duration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
