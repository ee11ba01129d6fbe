"""Export one size of a trained supernet as ONNX, with what a device needs to decode it.

    python -m espnet_dynenc.bin.export_onnx --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.cer_ctc.ave.pth --subnet 16 --output_dir exp/asr/onnx/16 \\
        [--quantize int8] [--pruning_plan P --strategy S --depth D]

``--output_dir`` gets ``encoder.onnx`` (normalised features in, CTC log-probabilities out,
dynamic batch and length), ``encoder.int8.onnx`` with ``--quantize int8`` (onnxruntime's
dynamic quantisation), ``frontend.npz``, ``global_mvn.npz``, ``tokens.txt``, ``bpe.model``
for BPE tokens, ``onnx_config.json``, and ``asr_onnx.py`` with ``audio_check.py`` beside it,
a decoder that needs only numpy, onnxruntime, soundfile and sentencepiece::

    python DIR/asr_onnx.py --model_dir DIR --wav_scp wav.scp --output text [--int8]

The export checks the graph against PyTorch and prints the largest difference. Bad
options (a size the model lacks, a depth missing from the plan) exit with status 2.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.deploy.compact import add_cut_arguments
from espnet_dynenc.deploy.onnx_export import QUANTIZE_CHOICES, describe, export_onnx_from_files
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cut_arguments(parser)
    parser.add_argument("--quantize", default=None, choices=QUANTIZE_CHOICES,
                        help="also write an int8 graph (onnxruntime dynamic quantisation)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--log_level", default="WARNING", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("export_onnx", also=(RuntimeError,))  # a graph that differs from PyTorch
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    result = export_onnx_from_files(args.asr_train_config, args.asr_model_file, args.output_dir, args.subnet,
                                    args.pruning_plan, args.strategy, args.depth, args.quantize)
    print(f"export_onnx: {describe(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
