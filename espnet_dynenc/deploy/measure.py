"""Measure one exported size with one backend, in a process of its own.

    python -m espnet_dynenc.deploy.measure --backend onnx_int8 --model_dir DIR \\
        --wav_scp dump/raw/test/wav.scp --num_threads 1 --output result.json

A fresh process per measurement makes its peak resident memory (``VmHWM``) the
memory that backend needs on a device: PyTorch with ESPnet and this package imported, or
onnxruntime with numpy only (the ONNX worker never imports torch). Each utterance is
decoded alone (batch 1, as a device decodes what it hears), read from disk before its
clock starts; the first utterance is decoded once more beforehand so that one-time set-up
does not count. Writes one JSON file: the backend, the number of utterances, audio and
decode seconds, the real-time factor, the peak memory and every hypothesis (token ids
and text).
"""
import argparse
import json
import os
import resource
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

BACKENDS = ("pytorch", "onnx_fp32", "onnx_int8")


def _onnx_decoder(model_dir: str, int8: bool, num_threads: int) -> Tuple[Callable, int]:
    from espnet_dynenc.deploy.onnx_inference import OnnxCTCModel

    model = OnnxCTCModel(model_dir, int8=int8, num_threads=num_threads)

    def decode(samples: np.ndarray) -> Tuple[List[int], str]:
        hyp = model.decode(samples)
        return hyp.token_ids, hyp.text

    return decode, int(model.config["fs"])


def _pytorch_decoder(model_dir: str, num_threads: int) -> Tuple[Callable, int]:
    import torch

    torch.set_num_threads(num_threads)
    from espnet_dynenc.checkpoint_jobs.loading import load_ctc_model
    from espnet_dynenc.decode.batch_decoding import build_text_converter, sampling_rate
    from espnet_dynenc.greedy_ctc import greedy_ctc_decode
    from espnet2.text.token_id_converter import TokenIDConverter

    model, train_args = load_ctc_model(os.path.join(model_dir, "config.yaml"), os.path.join(model_dir, "model.pth"))
    tokenizer = build_text_converter(train_args)
    converter = TokenIDConverter(token_list=model.token_list)

    @torch.no_grad()
    def decode(samples: np.ndarray) -> Tuple[List[int], str]:
        speech = torch.from_numpy(samples).unsqueeze(0)
        out, lengths = model.encode(speech, torch.tensor([len(samples)]))
        out = out[0] if isinstance(out, tuple) else out
        hyp = greedy_ctc_decode(model.ctc.log_softmax(out), lengths, model.blank_id)[0]
        tokens = converter.ids2tokens(hyp.token_ids)
        text = tokenizer.tokens2text(tokens) if tokenizer is not None else " ".join(tokens)
        return hyp.token_ids, text

    return decode, sampling_rate(None, train_args)


def peak_memory_bytes() -> int:
    """This process's peak resident memory. ``VmHWM`` belongs to the process's own address
    space; ``ru_maxrss`` would also count the parent's memory at the fork that started us."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(backend: str, model_dir: str, wav_scp: str, num_threads: int,
            max_utterances: Optional[int] = None) -> Dict:
    """Decode the utterances of ``wav_scp`` with one backend; times, memory and hypotheses."""
    from espnet_dynenc.deploy.onnx_inference import read_audio, read_wav_scp

    if backend not in BACKENDS:
        raise ValueError(f"--backend: '{backend}' is not one of {BACKENDS}")
    if num_threads < 1:
        raise ValueError(f"--num_threads: must be >= 1, got {num_threads}")
    if backend == "pytorch":
        decode, fs = _pytorch_decoder(model_dir, num_threads)
    else:
        decode, fs = _onnx_decoder(model_dir, backend == "onnx_int8", num_threads)
    entries = list(read_wav_scp(wav_scp))[:max_utterances]
    if not entries:
        raise ValueError(f"--wav_scp {wav_scp}: no utterances")
    decode(read_audio(entries[0][1], fs))  # warm-up, not timed
    hypotheses = {}
    decode_seconds = audio_seconds = 0.0
    for utt, path in entries:
        samples = read_audio(path, fs)
        start = time.perf_counter()
        token_ids, text = decode(samples)
        decode_seconds += time.perf_counter() - start
        audio_seconds += len(samples) / fs
        hypotheses[utt] = {"token_ids": token_ids, "text": text}
    return {
        "backend": backend,
        "model_dir": model_dir,
        "num_threads": num_threads,
        "num_utterances": len(entries),
        "audio_seconds": audio_seconds,
        "decode_seconds": decode_seconds,
        "rtf": decode_seconds / audio_seconds,
        "peak_memory_bytes": peak_memory_bytes(),
        "hypotheses": hypotheses,
    }


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--model_dir", required=True, help="export_subnet's (pytorch) or export_onnx's directory")
    parser.add_argument("--wav_scp", required=True)
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--max_utterances", type=int, default=None)
    parser.add_argument("--output", required=True, help="result JSON")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        result = measure(args.backend, args.model_dir, args.wav_scp, args.num_threads, args.max_utterances)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"measure: error: {error}", file=sys.stderr)
        return 1
    tmp = f"{args.output}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
