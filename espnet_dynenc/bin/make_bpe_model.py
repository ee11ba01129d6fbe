"""Stage 5: train a sentencepiece model and write ESPnet's token list for it.

    python -m espnet_dynenc.bin.make_bpe_model --text dump/raw/bpe_train.txt \\
        --vocab_size 5000 --model_type unigram --out_dir data/en_token_list/bpe_unigram5000

``--text`` holds ``<utt> <words>`` lines. Writes ``<out_dir>/train.txt`` (the words only),
``bpe.model``, ``bpe.vocab`` and ``tokens.txt`` (``<blank>``, ``<unk>``, pieces, ``<sos/eos>``).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.token_list import train_sentencepiece, transcripts_only, write_bpe_token_list


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, required=True)
    parser.add_argument("--vocab_size", type=int, required=True)
    parser.add_argument("--model_type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    parser.add_argument("--character_coverage", type=float, default=1.0)
    parser.add_argument("--input_sentence_size", type=int, default=100000000)
    parser.add_argument("--user_defined_symbols", default="", help="comma-separated symbols kept whole")
    parser.add_argument("--out_dir", type=Path, required=True)
    return parser


# sentencepiece reports e.g. a vocabulary larger than the text allows as a RuntimeError
@entry_point("make_bpe_model", also=(RuntimeError,))
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if not args.text.is_file():
        raise FileNotFoundError(f"no such file: {args.text}")
    symbols = [s for s in args.user_defined_symbols.split(",") if s]
    transcripts_only(args.text, args.out_dir / "train.txt")
    train_sentencepiece(args.out_dir / "train.txt", args.out_dir / "bpe", args.vocab_size, args.model_type,
                        args.character_coverage, args.input_sentence_size, symbols)
    count = write_bpe_token_list(args.out_dir / "bpe.vocab", args.out_dir / "tokens.txt")
    print(f"make_bpe_model: {args.out_dir}/tokens.txt: {count} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
