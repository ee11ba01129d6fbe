"""Stage 3 (one job): write one 16-bit audio file per utterance of a key shard.

    python -m espnet_dynenc.bin.format_audio --wav_scp data/test/wav.scp \\
        [--segments data/test/segments] --keys logs/keys.1.scp --fs 16k \\
        --out_dir dump/raw/test/data/format.1 \\
        --out_wav_scp logs/wav.1.scp --out_num_samples logs/utt2num_samples.1

Reads wav.scp values that are files, ``file.ark:OFFSET`` positions or pipes (``cmd |``),
cuts ``segments`` out of their recordings, resamples to ``--fs`` and writes
``<out_dir>/<utt>.<audio_format>``; the shard's wav.scp and utt2num_samples lines go to
the two ``--out_*`` files.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.format_audio import FORMATS, format_shard, parse_rate


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wav_scp", type=Path, required=True)
    parser.add_argument("--segments", type=Path, default=None, help="Kaldi segments file, if any")
    parser.add_argument("--keys", type=Path, required=True, help="utterance ids to format (first column)")
    parser.add_argument("--fs", default="16k", help="output sampling rate, e.g. 16k or 16000")
    parser.add_argument("--audio_format", default="wav", choices=sorted(FORMATS))
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--out_wav_scp", type=Path, required=True)
    parser.add_argument("--out_num_samples", type=Path, required=True)
    return parser


@entry_point("format_audio", also=(RuntimeError,))  # an audio pipe that failed, unreadable audio
def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s format_audio: %(message)s")
    args = get_parser().parse_args(argv)
    count = format_shard(args.wav_scp, args.segments, args.keys, parse_rate(args.fs), args.audio_format,
                         args.out_dir, args.out_wav_scp, args.out_num_samples)
    logging.info("done: %d utterances in %s", count, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
