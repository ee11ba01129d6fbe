"""Stage 13: write ref.trn and hyp.trn for word (WER) or character (CER) scoring.

    python -m espnet_dynenc.bin.make_trn --token_type word --ref_text dump/raw/test/text \\
        --hyp_text exp/x/decode_y/test/32/text --utt2spk dump/raw/test/utt2spk \\
        --out_dir exp/x/decode_y/test/32/score_wer

Lines are ``<tokens>\\t(<speaker>-<utterance>)`` in the order of --ref_text. The cleaner
applies to the reference only; an utterance without hypothesis counts as empty.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.trn_files import TOKEN_TYPES, write_trn_pair


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token_type", required=True, choices=TOKEN_TYPES)
    parser.add_argument("--ref_text", type=Path, required=True)
    parser.add_argument("--hyp_text", type=Path, required=True)
    parser.add_argument("--utt2spk", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--non_linguistic_symbols", default="none", help="file of symbols to remove, or none")
    parser.add_argument("--cleaner", default="none", help="ESPnet text cleaner for the reference, or none")
    return parser


@entry_point("make_trn")
def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="make_trn: %(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    for path in (args.ref_text, args.hyp_text, args.utt2spk):
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    write_trn_pair(args.ref_text, args.hyp_text, args.utt2spk, args.token_type, args.out_dir,
                   args.non_linguistic_symbols, args.cleaner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
