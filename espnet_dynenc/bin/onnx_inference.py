"""Decode a wav.scp with an exported ONNX size (numpy, onnxruntime, soundfile, sentencepiece only).

    python -m espnet_dynenc.bin.onnx_inference --model_dir exp/asr/onnx/16 \\
        --wav_scp dump/raw/test/wav.scp --output text [--int8] [--num_threads 1]

The same decoder is copied into every ONNX export as ``asr_onnx.py``, which runs without
this package; see ``espnet_dynenc.deploy.onnx_inference``.
"""
import sys
from typing import List, Optional

from espnet_dynenc.deploy.onnx_inference import get_parser, run
from espnet_dynenc.entry import entry_point

__all__ = ["get_parser", "main"]


@entry_point("onnx_inference", also=(RuntimeError,))  # soundfile reports a failed read so
def main(argv: Optional[List[str]] = None) -> int:
    return run(get_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
