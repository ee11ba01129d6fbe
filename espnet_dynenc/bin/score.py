"""Score a hypothesis .trn against a reference .trn; write sclite's ``result.txt`` report.

    python -m espnet_dynenc.bin.score --ref score_wer/ref.trn --hyp score_wer/hyp.trn \\
        --output score_wer/result.txt

Counts and layout agree with ``sclite -r REF trn -h HYP trn -i rm -o all stdout`` (case-
insensitive on ASCII, speaker = id up to the first '-'); the recipe uses this scorer when
``sclite`` is not installed. sclite's alternations "{ a / b }" are not implemented (the
scorer stops with an error when it meets one); ESPnet's trn files do not use them.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.scoring.sclite_format import sclite_report


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", required=True, type=Path, help="reference transcripts (trn)")
    parser.add_argument("--hyp", required=True, type=Path, help="hypotheses (trn)")
    parser.add_argument("--output", default="-", help="report file; '-' writes to stdout (default)")
    parser.add_argument("--title", default=None, help="system name in the report (default: --hyp as given)")
    return parser


@entry_point("score")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    for path in (args.ref, args.hyp):
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    report = sclite_report(args.ref, args.hyp, args.title)
    if args.output == "-":
        sys.stdout.write(report)
    else:
        Path(args.output).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
