"""Decode audio with an exported ONNX size, using only numpy, onnxruntime, soundfile and sentencepiece.

A device that runs one size needs neither PyTorch nor ESPnet nor this package: this file
is copied next to the model by ``export_onnx`` (as ``asr_onnx.py``) and works on its own::

    python asr_onnx.py --model_dir DIR --wav_scp wav.scp --output text [--int8] [--num_threads 1]

``DIR`` holds ``encoder.onnx`` (and ``encoder.int8.onnx``), ``onnx_config.json``,
``frontend.npz`` (the STFT window and mel matrix ESPnet's frontend used),
``global_mvn.npz`` (mean and std of the training features), ``tokens.txt`` and, for BPE
tokens, ``bpe.model``. The features are ESPnet's ``DefaultFrontend`` log-mel computed in
numpy (centred frames, reflect padding, |STFT|^2, mel, log of at least 1e-10), normalised
with the training statistics; the graph maps them to CTC log-probabilities, and greedy
decoding (best token per frame, repeats merged, blanks dropped) gives the tokens and the
text, written as ESPnet's ``text`` file (``<utt> <words>``).

Every audio file of the wav.scp is checked before the model is loaded
(``espnet_dynenc.audio_check``, copied beside this file as ``audio_check.py``); a bad one
ends the run with its wav.scp line named, and nothing written.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import onnxruntime
import soundfile

if __package__:
    from espnet_dynenc.audio_check import check_audio_scp
else:  # the copy beside an export (asr_onnx.py), which runs without this package
    from audio_check import check_audio_scp

CONFIG_FILE = "onnx_config.json"
FP32_MODEL = "encoder.onnx"
INT8_MODEL = "encoder.int8.onnx"


@dataclass(frozen=True)
class Hypothesis:
    token_ids: List[int]
    tokens: List[str]
    text: str


class OnnxCTCModel:
    """An exported size: features, the ONNX graph, greedy CTC and detokenisation.

    Args:
        model_dir: the directory ``export_onnx`` wrote.
        int8: use the dynamically quantised graph (``encoder.int8.onnx``).
        num_threads: onnxruntime's intra-op threads (None: its default, all cores).
    """

    def __init__(self, model_dir: str, int8: bool = False, num_threads: Optional[int] = None):
        self.model_dir = model_dir
        self.config = read_config(model_dir)
        graph = os.path.join(model_dir, INT8_MODEL if int8 else FP32_MODEL)
        if not os.path.isfile(graph):
            raise FileNotFoundError(f"--model_dir: no such file: {graph}" +
                                    (" (export with --quantize int8)" if int8 else ""))
        options = onnxruntime.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        frontend = np.load(os.path.join(model_dir, "frontend.npz"))
        self.window = frontend["window"].astype(np.float64)
        self.melmat = frontend["melmat"].astype(np.float64)
        stats = np.load(os.path.join(model_dir, "global_mvn.npz"))
        self.mean = stats["mean"].astype(np.float32)
        self.std = stats["std"].astype(np.float32)
        with open(os.path.join(model_dir, "tokens.txt"), encoding="utf-8") as f:
            self.token_list = [line.rstrip("\n") for line in f]
        self.blank_id = int(self.config["blank_id"])
        self.sentencepiece = None
        if self.config["token_type"] == "bpe":
            import sentencepiece

            self.sentencepiece = sentencepiece.SentencePieceProcessor()
            self.sentencepiece.Load(os.path.join(model_dir, "bpe.model"))

    # ------------------------------------------------------------------ features
    def features(self, samples: np.ndarray) -> np.ndarray:
        """(frames, mels) normalised log-mel features of one mono utterance in [-1, 1]."""
        frontend = self.config["frontend"]
        n_fft, hop = int(frontend["n_fft"]), int(frontend["hop_length"])
        x = np.asarray(samples, dtype=np.float64)
        if frontend["center"]:
            if len(x) <= n_fft // 2:
                raise ValueError(f"{len(x)} samples are too few for reflect padding of {n_fft // 2}")
            x = np.pad(x, n_fft // 2, mode="reflect")
        if len(x) < n_fft:
            raise ValueError(f"{len(x)} samples are fewer than one STFT frame ({n_fft})")
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
        spectrum = np.fft.rfft(frames * self.window, n=n_fft)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        feats = np.log(np.maximum(power @ self.melmat, 1e-10)).astype(np.float32)
        return (feats - self.mean) / self.std

    # ------------------------------------------------------------------ decoding
    def log_probs(self, feats: np.ndarray, lengths: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """CTC log-probabilities (batch, frames, vocab) and valid frames of (batch, time, mels) features."""
        if feats.ndim == 2:
            feats = feats[None]
        if lengths is None:
            lengths = np.full(feats.shape[0], feats.shape[1], dtype=np.int64)
        out, out_lengths = self.session.run(None, {"feats": feats.astype(np.float32),
                                                   "feats_lengths": lengths.astype(np.int64)})
        return out, out_lengths

    def greedy(self, log_probs: np.ndarray, length: int) -> Hypothesis:
        """Best token per valid frame, repeats merged, blanks dropped; tokens and text."""
        best = log_probs[:length].argmax(axis=-1)
        keep = np.ones(len(best), dtype=bool)
        keep[1:] = best[1:] != best[:-1]
        ids = [int(i) for i in best[keep] if i != self.blank_id]
        tokens = [self.token_list[i] for i in ids]
        return Hypothesis(ids, tokens, self.tokens_to_text(tokens))

    def tokens_to_text(self, tokens: Sequence[str]) -> str:
        """ESPnet's detokenisation for the model's token type (bpe, char or word)."""
        token_type = self.config["token_type"]
        if token_type == "bpe":
            return self.sentencepiece.DecodePieces(list(tokens))
        if token_type == "char":
            return "".join(" " if t == self.config.get("space_symbol", "<space>") else t for t in tokens)
        return " ".join(tokens)

    def decode(self, samples: np.ndarray) -> Hypothesis:
        feats = self.features(samples)
        out, out_lengths = self.log_probs(feats)
        return self.greedy(out[0], int(out_lengths[0]))


# ---------------------------------------------------------------------- files
def read_config(model_dir: str) -> dict:
    """The export's ``onnx_config.json``."""
    config_path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"--model_dir: no {CONFIG_FILE} in {model_dir} (is it export_onnx's output?)")
    with open(config_path, encoding="utf-8") as f:
        return json.load(f)


def read_wav_scp(path: str) -> Iterator[Tuple[str, str]]:
    """(utterance, audio file) per line of a Kaldi wav.scp; pipes and ark offsets are refused."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            if len(parts) != 2 or parts[1].endswith("|") or ".ark:" in parts[1]:
                raise ValueError(f"--wav_scp {path}:{number}: need '<utt> <audio file>', got '{line.strip()}'")
            yield parts[0], parts[1]


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    samples, rate = soundfile.read(path, dtype="float32", always_2d=False)
    if rate != sample_rate:
        raise ValueError(f"{path}: {rate} Hz, but the model was trained on {sample_rate} Hz audio")
    if samples.ndim != 1:
        raise ValueError(f"{path}: {samples.shape[1]} channels; the model takes mono audio")
    return samples


def decode_wav_scp(model: OnnxCTCModel, wav_scp: str, max_utterances: Optional[int] = None
                   ) -> Tuple[List[Tuple[str, Hypothesis]], float, float]:
    """(utterance, hypothesis) pairs, decode seconds and audio seconds of a wav.scp."""
    results = []
    decode_seconds = audio_seconds = 0.0
    sample_rate = int(model.config["fs"])
    for utt, path in read_wav_scp(wav_scp):
        if max_utterances is not None and len(results) >= max_utterances:
            break
        samples = read_audio(path, sample_rate)
        start = time.perf_counter()
        results.append((utt, model.decode(samples)))
        decode_seconds += time.perf_counter() - start
        audio_seconds += len(samples) / sample_rate
    return results, decode_seconds, audio_seconds


def write_text(path: str, results: Sequence[Tuple[str, Hypothesis]]) -> None:
    """ESPnet's ``text`` (``<utt> <words>``), written under a temporary name and renamed."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for utt, hyp in results:
            f.write(f"{utt} {hyp.text}".rstrip() + "\n")
    os.replace(tmp, path)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="the directory export_onnx wrote")
    parser.add_argument("--wav_scp", required=True, help="Kaldi wav.scp of plain audio files")
    parser.add_argument("--output", required=True, help="where ESPnet's text file goes")
    parser.add_argument("--int8", action="store_true", help="use the int8 graph")
    parser.add_argument("--num_threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--max_utterances", type=int, default=None)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the audio, decode it, write the text, print a summary line; return 0."""
    check_audio_scp(args.wav_scp, int(read_config(args.model_dir)["fs"]),
                    rate_source=os.path.join(args.model_dir, CONFIG_FILE))
    model = OnnxCTCModel(args.model_dir, args.int8, args.num_threads)
    results, seconds, audio = decode_wav_scp(model, args.wav_scp, args.max_utterances)
    write_text(args.output, results)
    rtf = seconds / audio if audio > 0 else float("nan")
    print(f"onnx_inference: {len(results)} utterances, {audio:.1f} s of audio, RTF {rtf:.4f} -> {args.output}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """The copy's entry point. Inside the package ``espnet_dynenc.bin.onnx_inference`` runs
    :func:`run` through ``espnet_dynenc.entry``; the copy cannot import it, and ends a
    refusal the same way: ``onnx_inference: error: <what>``, status 2."""
    args = get_parser().parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"onnx_inference: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
