"""A trained stock ESPnet Conformer model as the start of a supernet: every size begins from it.

    python -m espnet_dynenc.bin.init_supernet --asr_train_config exp/asr_conformer/config.yaml \\
        --asr_model_file exp/asr_conformer/valid.cer_ctc.ave.pth --method des --output_dir exp/supernet_init
    python -m espnet_dynenc.bin.init_supernet --packed_model asr_conformer.zip --output_dir exp/supernet_init
    python -m espnet_dynenc.bin.init_supernet ... --train_config conf/train_asr_des_finetune.yaml

then fine-tune it with the recipe (the command is printed)::

    ./run.sh --stage 10 --asr_config exp/supernet_init/train_des.yaml \\
        --pretrained_model exp/supernet_init/model.pth

``--output_dir`` gets ``config.yaml`` and ``model.pth`` (the supernet: the stock encoder, its
CTC head as the head of every size; before fine-tuning the full size computes the stock
model's posteriors), the statistics and BPE model the stock model was trained with,
``init.yaml`` (what was carried, left out, started) and, unless ``--train_config`` is given,
``train_<method>.yaml``: a short fine-tuning config, Dynamic Encoder Size (``des``: Step 1
learns which modules each size keeps, Step 2 trains the sizes with the sandwich rule) or layer
pruning on demand (``prune_on_demand``: intermediate CTC and stochastic depth). The
directory appears whole or not at all. A hybrid CTC/attention model is accepted (its
decoder is left out, said here). Run it from the directory the model was trained in
(ESPnet's config names its statistics relative to it), or give the packed zip.

Exits with status 2 and a message naming the option, the file or the parameter (with both
shapes) when something does not fit.
"""
import argparse
import logging
import sys
import tempfile
from typing import List, Optional

from espnet_dynenc.entry import add_model_arguments, entry_point
from espnet_dynenc.pretrained.convert import METHODS, FineTuning, convert
from espnet_dynenc.pretrained.source import model_files


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("the stock model (config + checkpoint, or a packed zip)")
    add_model_arguments(source, required=False)
    source.add_argument("--packed_model", default=None, help="a zip written by `espnet2.bin.pack asr`")
    parser.add_argument("--output_dir", required=True, help="where the supernet goes (must not exist)")
    fine = parser.add_argument_group("the fine-tuning config written beside it")
    fine.add_argument("--method", choices=METHODS, default="des",
                      help="des: Dynamic Encoder Size, Step 1 + Step 2; prune_on_demand: InterCTC and "
                           "stochastic depth, blocks removed at run time [%(default)s]")
    fine.add_argument("--subnet_sizes", type=int, nargs="+", default=None,
                      help="des: sizes in units (modules), the last the whole encoder [a third, two thirds, all]")
    fine.add_argument("--updates", type=int, default=FineTuning.updates, help="optimizer updates [%(default)s]")
    fine.add_argument("--epochs", type=int, default=FineTuning.epochs, help="epochs [%(default)s]")
    fine.add_argument("--lr", type=float, default=None, help="peak learning rate [the stock config's optim_conf.lr]")
    fine.add_argument("--step1_fraction", type=float, default=FineTuning.step1_fraction,
                      help="des: share of the updates in Step 1 [%(default)s]")
    fine.add_argument("--train_config", default=None,
                      help="fine-tune with this supernet config instead (its encoder must be the stock model's); "
                           "nothing is generated")
    parser.add_argument("--log_level", default="ERROR", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("init_supernet")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    schedule = FineTuning(args.updates, args.epochs, args.lr, args.step1_fraction)
    with tempfile.TemporaryDirectory(prefix="init_supernet_") as unpacked:
        files = model_files(args.asr_train_config, args.asr_model_file, args.packed_model, unpacked)
        result = convert(files, args.output_dir, args.method, args.train_config, args.subnet_sizes, schedule)
    print(f"init_supernet: {result.output_dir}: a supernet ({result.method}) of sizes {result.subnet_sizes} "
          f"({result.parameters} parameters) from {result.source}; every size's CTC head starts as the stock one")
    for line in result.dropped:
        print(f"init_supernet: left out {line}")
    print(f"init_supernet: fine-tuning config {result.train_config}; from the recipe directory:")
    for command in result.commands():
        print(f"    {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
