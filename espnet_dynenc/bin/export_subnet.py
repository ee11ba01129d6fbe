"""Export one size of a trained supernet as a standalone ESPnet model.

    python -m espnet_dynenc.bin.export_subnet --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.cer_ctc.ave.pth --subnet 16 --output_dir exp/asr/export/16
    python -m espnet_dynenc.bin.export_subnet ... --pruning_plan exp/asr/decode_x/pruning/pruning_plan.yaml \\
        --strategy top --depth 4 --output_dir exp/asr/export/24_top4

``--output_dir`` gets ``config.yaml`` (the encoder cut to the kept units, one CTC head),
``model.pth`` (only the parameters that size uses), the statistics and token files, and
``export.yaml``. ``ASRTask.build_model_from_file`` and ``Speech2Text`` load it; when its
blocks are whole stock Conformer blocks it is ESPnet's ``conformer`` and needs no
``import espnet_dynenc`` (the printout says which, and why not). ESPnet's packer zips it::

    python -m espnet2.bin.pack asr --asr_train_config DIR/config.yaml --asr_model_file DIR/model.pth \\
        --option DIR/feats_stats.npz --option DIR/bpe.model --outpath DIR.zip

A size the model does not have, or a strategy or depth missing from the plan, exits with
status 2 and names it.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.deploy.compact import add_cut_arguments, describe, export_from_files
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cut_arguments(parser)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--log_level", default="WARNING", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("export_subnet")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    result = export_from_files(args.asr_train_config, args.asr_model_file, args.output_dir, args.subnet,
                               args.pruning_plan, args.strategy, args.depth)
    print(f"export_subnet: {describe(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
