"""Download TED-LIUM release 2 and write its ESPnet data directories ``train``, ``dev``, ``test``.

    python -m espnet_dynenc.bin.prepare_tedlium2 --corpus_dir downloads --data_dir data
    python -m espnet_dynenc.bin.prepare_tedlium2 --corpus_dir downloads --download --download_only
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.corpora import tedlium2
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Write Kaldi-style data directories (with segments) for TED-LIUM 2's "
        "train, dev and test splits from the extracted corpus.",
    )
    parser.add_argument(
        "--corpus_dir",
        required=True,
        help="folder holding TEDLIUM_release2/ (or that folder itself); the download goes here",
    )
    parser.add_argument("--data_dir", default="data", help="where the data directories go (default: data)")
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(tedlium2.SPLITS),
        choices=tedlium2.SPLITS,
        metavar="SPLIT",
        help="splits to prepare (default: train dev test)",
    )
    parser.add_argument(
        "--no_check_counts",
        action="store_true",
        help="accept splits whose number of talks differs from the release's (partial corpora)",
    )
    parser.add_argument(
        "--noise_tokens",
        choices=tedlium2.NOISE_MODES,
        default="drop",
        help="{NOISE}-style tokens: 'drop' them (default) or keep them as [NOISE] ('bracket')",
    )
    parser.add_argument(
        "--sph2pipe",
        default="sph2pipe",
        help="sph2pipe program (name on PATH or path), needed for compressed .sph (default: sph2pipe)",
    )
    parser.add_argument(
        "--train_padding",
        nargs=2,
        type=float,
        default=list(tedlium2.TRAIN_PADDING),
        metavar=("START", "END"),
        help="seconds added before/after each training segment (default: 0.15 0.1; 0 0 for none)",
    )
    parser.add_argument("--download", action="store_true", help="download and extract the corpus first")
    parser.add_argument("--download_only", action="store_true", help="with --download: stop after it")
    parser.add_argument("--url", default=tedlium2.URL, help="archive URL (default: %(default)s)")
    parser.add_argument(
        "--no_verify_checksum",
        action="store_true",
        help="skip the SHA-256 check of the downloaded archive (for mirrors that repack it)",
    )
    parser.add_argument(
        "--remove_archive", action="store_true", help="delete the archive once it is extracted"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without data before a download retries"
    )
    return parser


def run(args: argparse.Namespace) -> None:
    """Download and/or prepare as the options say."""
    if args.download_only and not args.download:
        raise ValueError("--download_only needs --download")
    if min(args.train_padding) < 0:
        raise ValueError(f"--train_padding must not be negative, got {args.train_padding}")
    if args.download:
        tedlium2.download_tedlium2(
            args.corpus_dir,
            url=args.url,
            verify_checksum=not args.no_verify_checksum,
            remove_archive=args.remove_archive,
            timeout=args.timeout,
        )
    if not args.download_only:
        tedlium2.prepare_tedlium2(
            args.corpus_dir,
            args.data_dir,
            args.splits,
            check_counts=not args.no_check_counts,
            noise_tokens=args.noise_tokens,
            sph2pipe=args.sph2pipe,
            train_padding=tuple(args.train_padding),
        )


@entry_point("prepare_tedlium2", also=(RuntimeError,))  # a download or an extraction that failed
def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; bad input ends with one ``error:`` line and exit status 2."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
