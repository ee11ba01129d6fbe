"""One size of a supernet as an ONNX graph: normalised features in, CTC log-probabilities out.

The graph is the cut model's encoder (``compact.build_compact``, always a compact
``dynamic_conformer``, whose convolutions mask padding: a batch decodes like single
utterances) plus its CTC head, exported by PyTorch's ONNX exporter with a dynamic batch
and a dynamic number of frames. Two things differ from the PyTorch modules, by design:

* positional encodings are computed inside the graph from the number of frames instead of
  sliced from ESPnet's precomputed table, so the file holds no table (3.8 MB for d=96)
  and no length limit;
* the valid-frame mask is computed from the lengths with the subsampling's arithmetic
  (``subsampled_lengths``), without ESPnet's data-dependent ``make_pad_mask``.

The STFT and log-mel stay outside, in numpy (``onnx_inference``), with the window and mel
matrix taken from the model's own frontend; the normalisation statistics are written next
to the graph. ``--quantize int8`` adds onnxruntime's dynamic quantisation of the matrix
products' weights (activations quantised per batch at run time).
"""
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import yaml
from espnet.nets.pytorch_backend.transformer.embedding import PositionalEncoding, RelPositionalEncoding

from espnet_dynenc import audio_check
from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically
from espnet_dynenc.deploy import onnx_inference
from espnet_dynenc.deploy.compact import Cut, build_compact
from espnet_dynenc.encoder.block import AttentionInputs
from espnet_dynenc.encoder.dynamic_conformer import _SUBSAMPLING, DynamicConformerEncoder

QUANTIZE_CHOICES = ("int8",)
MIN_EXAMPLE_FRAMES = 64


class ComputedPositionalEncoding(torch.nn.Module):
    """ESPnet's sinusoidal encodings computed from the length (no table, no length limit).

    ``kind`` is ``rel`` (``RelPositionalEncoding``: offsets T-1 .. -(T-1)) or ``abs``
    (``PositionalEncoding``: added to the input). The angles are ESPnet's:
    position * exp(-(2i) ln(10000) / d), sin on even and cos on odd channels.
    """

    def __init__(self, kind: str, d_model: int):
        super().__init__()
        self.kind = kind
        self.xscale = math.sqrt(d_model)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
        self.register_buffer("div_term", div_term, persistent=False)

    def table(self, positions: torch.Tensor) -> torch.Tensor:
        angles = positions.to(torch.float32).unsqueeze(1) * self.div_term.unsqueeze(0)
        return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1).unsqueeze(0)

    def forward(self, x: torch.Tensor):
        frames = x.size(1)
        if self.kind == "rel":
            positions = torch.arange(frames - 1, -frames, -1, device=x.device)
            return x * self.xscale, self.table(positions).to(x.dtype)
        return x * self.xscale + self.table(torch.arange(frames, device=x.device)).to(x.dtype)


def _computed_encoding(module: torch.nn.Module, d_model: int) -> Optional[ComputedPositionalEncoding]:
    # exact types: ESPnet's scaled and legacy encodings subclass PositionalEncoding
    if type(module) is RelPositionalEncoding:
        return ComputedPositionalEncoding("rel", d_model)
    if type(module) is PositionalEncoding:
        return ComputedPositionalEncoding("abs", d_model)
    return None  # a learned scale, or the legacy encoding (positions counted from its table's end): the table stays


def replace_positional_encoding(encoder: DynamicConformerEncoder) -> None:
    """Swap ESPnet's table-slicing positional encoding for the computed one, in place."""
    for parent in encoder.embed.modules():
        for name, child in list(parent.named_children()):
            computed = _computed_encoding(child, encoder.output_size())
            if computed is not None:
                setattr(parent, name, computed)
                return


class CTCGraph(torch.nn.Module):
    """Normalised features (batch, frames, mels) and lengths -> CTC log-probabilities and lengths."""

    def __init__(self, encoder: DynamicConformerEncoder, ctc_lo: torch.nn.Linear):
        super().__init__()
        self.encoder = encoder
        self.ctc_lo = ctc_lo

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        encoder = self.encoder
        if isinstance(encoder.embed, tuple(_SUBSAMPLING.values())):
            xs, _ = encoder.embed(feats, None)
        else:
            xs = encoder.embed(feats)
        x, pos_emb = xs if isinstance(xs, tuple) else (xs, None)
        lengths = encoder.subsampled_lengths(feats_lengths)
        valid = torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        inputs = AttentionInputs(valid.unsqueeze(1), ~valid, pos_emb)
        for block in encoder.encoders:
            x = block(x, inputs, [spec.scale for spec in block.units])
        if encoder.after_norm is not None:
            x = encoder.after_norm(x)
        return torch.log_softmax(self.ctc_lo(x), dim=-1), lengths


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote and how close the graph is to PyTorch."""

    output_dir: Path
    cut: Cut
    fp32_bytes: int
    int8_bytes: Optional[int]
    max_abs_diff: float  # fp32 graph vs PyTorch on the export's check input


def strip_debug_info(path: Path) -> None:
    """Drop the exporter's per-node debug records (Python stack traces, module paths of
    this machine): more than half of a small model's file, and nothing a runtime reads."""
    import onnx

    graph = onnx.load(str(path))
    for node in graph.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(graph, str(path))


def frontend_arrays(model) -> Tuple[dict, dict]:
    """(settings, arrays) of ESPnet's ``DefaultFrontend``: what numpy needs to compute the features."""
    frontend = model.frontend
    stft, logmel = getattr(frontend, "stft", None), getattr(frontend, "logmel", None)
    enhancement = getattr(frontend, "frontend", None)  # multi-channel WPE/beamformer; a no-op on mono audio
    if enhancement is not None and (getattr(enhancement, "use_wpe", False) or getattr(enhancement, "use_beamformer", False)):
        raise ValueError("export_onnx: the frontend's WPE/beamformer enhancement cannot be exported")
    if stft is None or logmel is None:
        raise ValueError(f"export_onnx: the frontend {type(frontend).__name__} is not ESPnet's plain "
                         "DefaultFrontend (STFT + log-mel); only that one is computed outside the graph")
    if not stft.onesided or stft.normalized or getattr(logmel, "log_base", None) is not None:
        raise ValueError("export_onnx: the frontend's STFT must be one-sided and unnormalised, its log natural")
    win_length = stft.win_length or stft.n_fft
    window = (getattr(torch, f"{stft.window}_window")(win_length) if stft.window is not None
              else torch.ones(win_length))
    left = (stft.n_fft - win_length) // 2
    window = torch.nn.functional.pad(window, (left, stft.n_fft - win_length - left))
    settings = {"n_fft": stft.n_fft, "hop_length": stft.hop_length, "center": bool(stft.center)}
    return settings, {"window": window.numpy(), "melmat": logmel.melmat.cpu().numpy()}


def normalisation_arrays(model) -> dict:
    normalize = model.normalize
    if normalize is None:
        raise ValueError("export_onnx: the model has no feature normalisation; global_mvn is expected")
    if type(normalize).__name__ != "GlobalMVN":
        raise ValueError(f"export_onnx: normalisation {type(normalize).__name__} is not global_mvn")
    dim = normalize.mean.numel()
    mean = normalize.mean.cpu().numpy() if normalize.norm_means else np.zeros(dim, np.float32)
    std = normalize.std.cpu().numpy() if normalize.norm_vars else np.ones(dim, np.float32)
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


def _example_input(num_mels: int) -> Tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 2 * MIN_EXAMPLE_FRAMES, num_mels, generator=generator)
    return feats, torch.tensor([2 * MIN_EXAMPLE_FRAMES, MIN_EXAMPLE_FRAMES + 11])


def export_onnx(model, asr_train_config: str, cut: Cut, output_dir: str, quantize: Optional[str] = None,
                opset: int = 18) -> OnnxExport:
    """Write the graph, the frontend and normalisation arrays, the tokens, the config and
    the standalone inference module into ``output_dir``."""
    import onnxruntime

    if quantize not in (None,) + QUANTIZE_CHOICES:
        raise ValueError(f"--quantize: '{quantize}' is not one of {QUANTIZE_CHOICES}")
    with open(asr_train_config, encoding="utf-8") as f:
        train_config = yaml.safe_load(f)
    built = build_compact(model, train_config, cut, force_dynamic=True)
    compact = built.model
    encoder = compact.encoder
    replace_positional_encoding(encoder)
    graph = CTCGraph(encoder, compact.ctc.ctc_lo).eval()
    settings, frontend = frontend_arrays(compact)
    stats = normalisation_arrays(compact)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / onnx_inference.CONFIG_FILE).unlink(missing_ok=True)
    feats, lengths = _example_input(len(stats["mean"]))
    batch = torch.export.Dim("batch", min=1, max=4096)
    frames = torch.export.Dim("frames", min=MIN_EXAMPLE_FRAMES // 2, max=1_000_000)
    fp32 = out / onnx_inference.FP32_MODEL

    def write_graph(tmp: Path) -> None:
        torch.onnx.export(graph, (feats, lengths), str(tmp), input_names=["feats", "feats_lengths"],
                          output_names=["log_probs", "lengths"], dynamic_shapes=({0: batch, 1: frames}, {0: batch}),
                          dynamo=True, external_data=False, opset_version=opset, verbose=False)
        strip_debug_info(tmp)

    logging.info("exporting %s to ONNX (opset %d)", cut.name, opset)
    replace_atomically(fp32, write_graph)
    session = onnxruntime.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected, expected_lengths = graph(feats, lengths)
    got, got_lengths = session.run(None, {"feats": feats.numpy(), "feats_lengths": lengths.numpy()})
    if not np.array_equal(got_lengths, expected_lengths.numpy()):
        raise RuntimeError(f"export_onnx: the graph's lengths {got_lengths} differ from PyTorch's "
                           f"{expected_lengths.tolist()}")
    valid = np.arange(got.shape[1])[None, :] < got_lengths[:, None]
    max_abs_diff = float(np.abs(got - expected.numpy())[valid].max())
    int8_bytes = None
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        replace_atomically(out / onnx_inference.INT8_MODEL, lambda tmp: quantize_dynamic(
            str(fp32), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]))
        int8_bytes = (out / onnx_inference.INT8_MODEL).stat().st_size
    replace_atomically(out / "frontend.npz", lambda tmp: np.savez(tmp, **frontend))
    replace_atomically(out / "global_mvn.npz", lambda tmp: np.savez(tmp, **stats))
    write_text_atomically(out / "tokens.txt", "".join(f"{token}\n" for token in compact.token_list))
    token_type = train_config.get("token_type", "char")
    if token_type == "bpe":
        shutil.copyfile(train_config["bpemodel"], out / "bpe.model")
    shutil.copyfile(onnx_inference.__file__, out / "asr_onnx.py")
    shutil.copyfile(audio_check.__file__, out / "audio_check.py")  # the decoder's check of its audio
    config = {
        "subnet": cut.size, "strategy": cut.strategy, "depth": cut.depth, "skip_blocks": list(cut.skip_blocks),
        "token_type": token_type, "blank_id": compact.blank_id,
        "space_symbol": (train_config.get("model_conf") or {}).get("sym_space", "<space>"),
        "fs": audio_check.frontend_sample_rate(train_config.get("frontend_conf")),
        "frontend": settings, "opset": opset,
        "parameters": sum(p.numel() for p in compact.parameters()),
        "max_abs_diff_vs_pytorch": max_abs_diff, "quantized": quantize,
        "source": {"asr_train_config": str(asr_train_config)},
    }
    # written last: its presence marks a finished export
    write_text_atomically(out / onnx_inference.CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return OnnxExport(out, cut, fp32.stat().st_size, int8_bytes, max_abs_diff)


def export_onnx_from_files(asr_train_config: str, asr_model_file: str, output_dir: str, size: Optional[int] = None,
                           pruning_plan: Optional[str] = None, strategy: Optional[str] = None,
                           depth: Optional[int] = None, quantize: Optional[str] = None) -> OnnxExport:
    """Load the supernet, check the options and export (``bin/export_onnx``'s work)."""
    from espnet_dynenc.checkpoint_jobs.loading import load_model
    from espnet_dynenc.deploy.compact import resolve_cut

    model, _ = load_model(asr_train_config, asr_model_file)
    cut = resolve_cut(model, size, pruning_plan, strategy, depth)
    return export_onnx(model, asr_train_config, cut, output_dir, quantize)


def describe(result: OnnxExport) -> str:
    line = (f"{result.output_dir}: subnet {result.cut.name}, {onnx_inference.FP32_MODEL} {result.fp32_bytes} bytes"
            f"; max |ONNX - PyTorch| log-probability {result.max_abs_diff:.2e}")
    if result.int8_bytes is not None:
        line += f"; {onnx_inference.INT8_MODEL} {result.int8_bytes} bytes"
    return line
