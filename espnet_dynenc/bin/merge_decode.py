"""Stage 12: merge parallel decoding jobs' outputs into one directory per subnet size.

    python -m espnet_dynenc.bin.merge_decode --output_dir exp/x/decode_y/test \\
        exp/x/decode_y/test/logdir/output.1 exp/x/decode_y/test/logdir/output.2

Writes ``<output_dir>/<size>/{text,token,token_int,score,decode_stats.yaml}``; the merged
real-time factor is sum(decode_seconds) / sum(audio_seconds).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.decode_merge import merge_jobs


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("job_dirs", type=Path, nargs="+", help="output directories of the jobs")
    return parser


@entry_point("merge_decode")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    outputs = merge_jobs(args.job_dirs, args.output_dir)
    print(f"merge_decode: {args.output_dir}: {' '.join(outputs)} from {len(args.job_dirs)} job(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
