"""Download LibriSpeech and write its ESPnet data directories.

    python -m espnet_dynenc.bin.prepare_librispeech --corpus_dir downloads --data_dir data
    python -m espnet_dynenc.bin.prepare_librispeech --corpus_dir downloads --download --download_only
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.corpora import librispeech
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Write Kaldi-style data directories (one per LibriSpeech part, with '_' for "
        "'-', plus train_960 and dev when all their parts are prepared) from the extracted corpus.",
    )
    parser.add_argument(
        "--corpus_dir",
        required=True,
        help="folder holding LibriSpeech/ (or the LibriSpeech folder itself); downloads go here",
    )
    parser.add_argument("--data_dir", default="data", help="where the data directories go (default: data)")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=list(librispeech.PARTS),
        choices=librispeech.PARTS,
        metavar="PART",
        help=f"parts to prepare (default: all of {' '.join(librispeech.PARTS)})",
    )
    parser.add_argument(
        "--no_check_counts",
        action="store_true",
        help="accept parts whose utterance count differs from the published one (partial corpora)",
    )
    parser.add_argument("--download", action="store_true", help="download and extract the parts first")
    parser.add_argument("--download_only", action="store_true", help="with --download: stop after it")
    parser.add_argument(
        "--base_url", default=librispeech.BASE_URL, help="where <part>.tar.gz are (default: %(default)s)"
    )
    parser.add_argument(
        "--no_verify_checksums",
        action="store_true",
        help="skip the SHA-256 check of downloaded archives (for mirrors that repack them)",
    )
    parser.add_argument(
        "--remove_archives", action="store_true", help="delete each archive once it is extracted"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without data before a download retries"
    )
    return parser


def run(args: argparse.Namespace) -> None:
    """Download and/or prepare as the options say."""
    if args.download_only and not args.download:
        raise ValueError("--download_only needs --download")
    if args.download:
        librispeech.download_librispeech(
            args.corpus_dir,
            args.parts,
            base_url=args.base_url,
            verify_checksums=not args.no_verify_checksums,
            remove_archives=args.remove_archives,
            timeout=args.timeout,
        )
    if not args.download_only:
        librispeech.prepare_librispeech(
            args.corpus_dir, args.data_dir, args.parts, check_counts=not args.no_check_counts
        )


@entry_point("prepare_librispeech", also=(RuntimeError,))  # a download or an extraction that failed
def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; bad input ends with one ``error:`` line and exit status 2."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
