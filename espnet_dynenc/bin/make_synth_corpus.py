"""Make the ``mini_synth`` corpus: Kaldi-style train/dev/test directories of espeak-ng speech.

Example (the recipe's defaults, about a minute on two cores)::

    python -m espnet_dynenc.bin.make_synth_corpus --data_dir data --wav_dir downloads/mini_synth

A finished run leaves ``<data_dir>/local/mini_synth/.done``; running again with the same
settings does nothing (``--force`` remakes the corpus).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from espnet_dynenc.corpora.synth import ACCENTS, BACKENDS, CorpusConfig, EspeakError, generate_corpus
from espnet_dynenc.entry import entry_point


def _comma_list(value: str) -> List[str]:
    return [item for item in value.split(",") if item]


def _snr_range(value: str) -> Tuple[float, float]:
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in dB, e.g. 5,15, got '{value}'") from None
    return low, high


def get_parser() -> argparse.ArgumentParser:
    defaults = CorpusConfig(data_dir=Path("data"), wav_dir=Path("downloads/mini_synth"))
    parser = argparse.ArgumentParser(
        prog="python -m espnet_dynenc.bin.make_synth_corpus",
        description=__doc__.split("\n\n")[0]
        + " Dev and test voices are held out from training; everything follows from --seed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=defaults.data_dir,
                        help="where the train, dev and test data directories go")
    parser.add_argument("--wav_dir", type=Path, default=defaults.wav_dir,
                        help="where the 16 kHz WAV files go (one folder per split)")
    parser.add_argument("--num_train", type=int, default=defaults.num_train, help="training utterances")
    parser.add_argument("--num_dev", type=int, default=defaults.num_dev, help="dev utterances")
    parser.add_argument("--num_test", type=int, default=defaults.num_test, help="test utterances")
    parser.add_argument("--num_dev_voices", type=int, default=defaults.num_dev_voices,
                        help="accent+variant voices heard only in dev (each at every pitch band)")
    parser.add_argument("--num_test_voices", type=int, default=defaults.num_test_voices,
                        help="accent+variant voices heard only in test (each at every pitch band)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed for sentences, voices, rates, pitches and the held-out split")
    # argparse passes string defaults through ``type`` too, so help shows them as typed
    parser.add_argument("--accents", type=_comma_list, default=",".join(defaults.accents),
                        help=f"comma-separated espeak-ng English voices, from {','.join(ACCENTS)}")
    parser.add_argument("--variants", type=_comma_list, default=",".join(defaults.variants),
                        help="comma-separated espeak-ng voice variants (espeak-ng-data/voices/!v)")
    parser.add_argument("--backend", default=defaults.backend,
                        help=f"espeak-ng backend, one of {', '.join(BACKENDS)}: 'loader' is the "
                             "espeakng-loader wheel, 'command' the espeak-ng program, 'auto' the "
                             "first of these that is installed")
    parser.add_argument("--espeak_command", default=defaults.espeak_command,
                        help="espeak-ng program for --backend command")
    parser.add_argument("--nj", type=int, default=defaults.nj, help="worker processes")
    parser.add_argument("--babble_talkers", type=int, default=defaults.babble_talkers,
                        help="other speakers of the same split talking under each utterance (0: none)")
    parser.add_argument("--babble_snr", type=_snr_range, default=",".join(map(str, defaults.babble_snr)),
                        help="range of the speech-to-babble ratio in dB, LOW,HIGH")
    parser.add_argument("--force", action="store_true", help="remake the corpus even if it is complete")
    return parser


@entry_point("make_synth_corpus", also=(EspeakError,))
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    config = CorpusConfig(
        data_dir=args.data_dir, wav_dir=args.wav_dir,
        num_train=args.num_train, num_dev=args.num_dev, num_test=args.num_test, seed=args.seed,
        num_dev_voices=args.num_dev_voices, num_test_voices=args.num_test_voices,
        accents=tuple(args.accents), variants=tuple(args.variants),
        backend=args.backend, espeak_command=args.espeak_command, nj=args.nj,
        babble_talkers=args.babble_talkers, babble_snr=args.babble_snr)
    generate_corpus(config, force=args.force, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
