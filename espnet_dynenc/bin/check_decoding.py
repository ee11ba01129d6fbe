"""asr.sh's check of its decoding options before any stage runs; prints the decoder kind.

    python -m espnet_dynenc.bin.check_decoding --inference_config conf/decode_lm.yaml \\
        --use_lm true --lm_train_config exp/lm/config.yaml --asr_tokens data/tokens.txt

Prints ``beam`` (an LM, or a config or arguments setting ``beam_size``) or ``greedy``.
Exits with status 2 and a message naming the culprit when the config has a key the
decoder does not know, ``--inference_args`` has such an option, ``--use_lm true`` goes to
the greedy decoder, or the LM's token list differs from the ASR model's.
"""
import argparse
import sys
from typing import List, Optional

from espnet2.utils.types import str2bool, str_or_none

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.decode_check import DecodingSetup, check_decoding


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inference_config", type=str_or_none, default=None, help="asr.sh's --inference_config")
    parser.add_argument("--inference_args", default="", help="asr.sh's --inference_args")
    parser.add_argument("--use_lm", type=str2bool, default=False, help="asr.sh's --use_lm")
    parser.add_argument("--inference_module", type=str_or_none, default=None,
                        help="asr.sh's --asr_inference_module, when given")
    parser.add_argument("--lm_train_config", type=str_or_none, default=None,
                        help="config.yaml of an LM that exists already (its token list is checked)")
    parser.add_argument("--asr_tokens", type=str_or_none, default=None,
                        help="the ASR model's config.yaml, or the token list it is trained on")
    return parser


@entry_point("check_decoding")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    setup = DecodingSetup(inference_config=args.inference_config, inference_args=args.inference_args,
                          use_lm=args.use_lm, inference_module=args.inference_module,
                          lm_train_config=args.lm_train_config, asr_tokens=args.asr_tokens)
    print(check_decoding(setup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
