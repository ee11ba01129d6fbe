"""asr.sh's check of --pretrained_model before training: will ESPnet's --init_param load it right?

    python -m espnet_dynenc.bin.check_pretrained_model --pretrained_model exp/init/model.pth \\
        --ignore_init_mismatch false --token_list data/en_token_list/bpe_bpe100/tokens.txt \\
        -- --config conf/train_asr_des_finetune.yaml --frontend_conf fs=16k --normalize global_mvn ...

After ``--`` come the training options as stage 11 gives them to the trainer (the config,
the model options of ``--asr_args``); the model they build is what the checkpoint must fit.
The checkpoint's ``config.yaml`` (beside it, where ESPnet writes it) gives its token list
and encoder. Prints one line, what loads where; exits with status 2 and a message naming
the culprit (a missing file, an encoder that is not a Conformer, the first token that
differs from the recipe's, the first parameter whose shape differs, with both shapes).
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet2.utils.types import str2bool

from espnet_dynenc.entry import entry_point
from espnet_dynenc.pretrained.init_param import check_pretrained_model


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="%(prog)s --pretrained_model SPEC --token_list FILE [options] -- "
                                           "TRAINING_OPTIONS...")
    parser.add_argument("--pretrained_model", required=True, help="asr.sh's --pretrained_model, "
                        "path[:src_key:dst_key:excluded] as ESPnet's --init_param")
    parser.add_argument("--ignore_init_mismatch", type=str2bool, default=False,
                        help="asr.sh's --ignore_init_mismatch: tensors that do not fit are left out, not refused")
    parser.add_argument("--token_list", required=True, help="the recipe's tokens.txt")
    parser.add_argument("--log_level", default="ERROR", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("check_pretrained_model")
def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = get_parser().parse_args(argv[:split])
    train_args = ["--token_list", args.token_list] + argv[split + 1:]
    logging.basicConfig(level=args.log_level, format="%(levelname)s: %(message)s")
    print(check_pretrained_model(args.pretrained_model, args.ignore_init_mismatch, args.token_list, train_args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
