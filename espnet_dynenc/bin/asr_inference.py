"""ESPnet's ``asr_inference`` with a choice of subnet.

Takes ``espnet2.bin.asr_inference``'s options plus ``--subnet`` (a size of the model,
default the supernet) and ``--skip_blocks`` (blocks removed at run time)::

    python -m espnet_dynenc.bin.asr_inference --subnet 16 --asr_train_config ... \\
        --asr_model_file ... --data_path_and_name_and_type ... --output_dir ...

Every audio file is checked before the model is loaded (``espnet_dynenc.audio_check``).
"""
import argparse
import sys
from typing import List, Optional

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

from espnet2.bin.asr_inference import get_parser as espnet_parser
from espnet2.bin.asr_inference import inference
from espnet2.utils.types import int_or_none
from espnet.utils.cli_utils import get_commandline_args

from espnet_dynenc.audio_check import check_decoder_inputs
from espnet_dynenc.entry import entry_point
from espnet_dynenc.model.supernet_ctc import set_default_inference_subnet


def get_parser() -> argparse.ArgumentParser:
    parser = espnet_parser()
    group = parser.add_argument_group("Subnet selection (espnet_dynenc)")
    group.add_argument("--subnet", type=int_or_none, default=None,
                       help="subnet size (number of kept units) to decode; default: the supernet")
    group.add_argument("--skip_blocks", type=int, nargs="*", default=[],
                       help="0-based encoder blocks to remove at run time")
    return parser


@entry_point("asr_inference")
def main(argv: Optional[List[str]] = None) -> int:
    print(get_commandline_args(), file=sys.stderr)
    args = get_parser().parse_args(argv)
    check_decoder_inputs(args.data_path_and_name_and_type, args.asr_train_config, key_file=args.key_file)
    kwargs = vars(args)
    kwargs.pop("config", None)
    set_default_inference_subnet(kwargs.pop("subnet"), kwargs.pop("skip_blocks"))
    inference(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
