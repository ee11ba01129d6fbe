"""Write one speed-perturbed utterance as a wav file to stdout (a Kaldi ``wav.scp`` pipe).

    python -m espnet_dynenc.bin.speed_perturb --factor 0.9 --input 'path/or/pipe |' > out.wav

``--input`` is a ``wav.scp`` value: a sound file, ``file.ark:OFFSET`` or a command ending
in ``|``. A factor f makes the audio 1/f times as long, with pitch moving accordingly
(like sox's ``speed`` effect). Stage 2 of the recipe writes these pipes into
``data/<train>_sp/wav.scp``; stage 3 recognises them and runs the same code in-process.
"""
import argparse
import io
import sys
from typing import List, Optional

import soundfile

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.audio_source import read_entry
from espnet_dynenc.recipe.speed_perturb import perturb_samples


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=float, required=True, help="speed factor, e.g. 0.9 or 1.1")
    parser.add_argument("--input", required=True, help="wav.scp value of the original utterance")
    return parser


@entry_point("speed_perturb", also=(RuntimeError,))  # an audio pipe that failed, unreadable audio
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.factor <= 0:
        raise ValueError(f"--factor must be positive, got {args.factor}")
    samples, rate = read_entry(args.input)
    # a wav header holds the data size, so the file is built in memory (stdout cannot seek)
    buffer = io.BytesIO()
    soundfile.write(buffer, perturb_samples(samples, rate, args.factor), rate, format="WAV", subtype="PCM_16")
    sys.stdout.buffer.write(buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
