"""Split a key file into contiguous shards of near-equal size, one per parallel job.

    python -m espnet_dynenc.bin.split_keys data/test/wav.scp logs/keys.1.scp logs/keys.2.scp
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.split_keys import split_file


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="file with one utterance per line")
    parser.add_argument("outputs", type=Path, nargs="+", help="one output file per shard")
    return parser


@entry_point("split_keys")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if not args.source.is_file():
        raise FileNotFoundError(f"no such file: {args.source}")
    split_file(args.source, args.outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
