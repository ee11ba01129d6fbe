"""Stage 2: write the speed-perturbed copy of a data directory.

    python -m espnet_dynenc.bin.perturb_data_dir --factors "0.9 1.0 1.1" data/train data/train_sp

Factor 1.0 keeps the original ids and audio; every other factor f adds ``sp<f>-`` to
utterance, speaker and recording ids and reads its audio through a pipe to
``espnet_dynenc.bin.speed_perturb`` (see there).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.speed_perturb import parse_factors, perturb_data_dir


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factors", required=True, help='space-separated factors, e.g. "0.9 1.0 1.1"')
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter written into the wav.scp pipes (default: this one)")
    parser.add_argument("src", type=Path, help="data directory to perturb")
    parser.add_argument("dst", type=Path, help="output data directory")
    return parser


@entry_point("perturb_data_dir")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    missing = [n for n in ("wav.scp", "text", "utt2spk") if not (args.src / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{args.src} lacks {', '.join(missing)}")
    count = perturb_data_dir(args.src, args.dst, parse_factors(args.factors), args.python)
    print(f"perturb_data_dir: {args.dst}: {count} utterances (factors {args.factors})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
