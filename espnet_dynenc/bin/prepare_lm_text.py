"""Write a corpus's language-model text as ``<id> <sentence>`` lines (asr.sh's --lm_train_text).

    python -m espnet_dynenc.bin.prepare_lm_text --corpus librispeech --download_dir downloads \\
        --output data/local/other_text/text
    python -m espnet_dynenc.bin.prepare_lm_text --corpus tedlium2 --corpus_dir downloads \\
        --output data/local/other_text/text

LibriSpeech: the LM text corpus of openslr 11 (librispeech-lm-norm.txt.gz, 40 M sentences),
downloaded into --download_dir like the audio (resumable, its checksum verified) unless
--archive names a copy. TED-LIUM 2: the release's own LM text (TEDLIUM_release2/LM/*.en.gz),
normalised like the transcripts; a release without it gives an empty file, and the LM
learns from the training transcripts alone. The output is written whole or not at all;
an existing one is kept (delete it to write it again).
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.corpora import librispeech, tedlium2
from espnet_dynenc.corpora.lm_text import DEFAULT_OUTPUT
from espnet_dynenc.entry import entry_point

CORPORA = ("librispeech", "tedlium2")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, choices=CORPORA)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the text file to write (%(default)s)")
    parser.add_argument("--corpus_dir", type=Path, default=None,
                        help="tedlium2: the folder holding TEDLIUM_release2/ (or that folder)")
    parser.add_argument("--download_dir", type=Path, default=Path("downloads"),
                        help="librispeech: where the LM text archive is downloaded (%(default)s)")
    parser.add_argument("--archive", type=Path, default=None,
                        help="librispeech: a local librispeech-lm-norm.txt.gz instead of downloading it")
    parser.add_argument("--url", default=librispeech.LM_TEXT_URL, help="librispeech: where the archive is")
    parser.add_argument("--no_verify_checksum", action="store_true",
                        help="librispeech: skip the archive's MD5 check (openslr publishes none; see the module)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a download retries")
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the LM text; return its number of sentences (-1: kept from an earlier run)."""
    if args.output.is_file():
        logging.info("%s exists; kept (delete it to write it again)", args.output)
        return -1
    if args.corpus == "librispeech":
        archive = args.archive
        if archive is None:
            archive = librispeech.download_lm_text(args.download_dir, args.url, not args.no_verify_checksum,
                                                   args.timeout)
        elif not archive.is_file():
            raise FileNotFoundError(f"--archive: no such file: {archive}")
        return librispeech.prepare_lm_text(archive, args.output)
    if args.corpus_dir is None:
        raise ValueError("--corpus tedlium2 needs --corpus_dir")
    return tedlium2.prepare_lm_text(args.corpus_dir, args.output)


@entry_point("prepare_lm_text", also=(RuntimeError,))  # a download that failed
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    count = run(args)
    if count >= 0:
        print(f"prepare_lm_text: {args.output}: {count} sentences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
