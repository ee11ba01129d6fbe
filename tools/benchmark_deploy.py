#!/usr/bin/env python3
"""Deploying each size: PyTorch against ONNX Runtime fp32 and int8, measured in one run.

For every size decoded in ``--decode_dir`` (and every pruned depth there), exports the
compact PyTorch model and the ONNX graphs, then decodes the test set with each backend in
a process of its own, one backend after another per size, at ``--num_threads`` threads,
one utterance at a time. Prints per size:

1. parameters and bytes on disk: PyTorch ``model.pth``, ``encoder.onnx``, ``encoder.int8.onnx``
   (and int8 / fp32);
2. the real-time factor of PyTorch, ORT fp32 and ORT int8, the ORT speed-ups over PyTorch,
   and each backend's peak memory;
3. the WER of each backend's own hypotheses; how many utterances ORT fp32 and int8 decode
   to the same tokens as PyTorch, and how many the compact PyTorch model decodes to the
   same text as the supernet's size in the decode directory; the export's largest
   |ONNX - PyTorch| log-probability.

Usage: tools/venv/bin/python tools/benchmark_deploy.py --asr_train_config exp/asr/config.yaml \\
    --asr_model_file exp/asr/valid.cer_ctc.ave.pth --decode_dir exp/asr/decode_... \\
    --test_set test --wav_scp dump/raw/test/wav.scp [--num_threads 1] [--max_utterances N]
"""
import argparse
import logging
from pathlib import Path
from typing import Dict, List

from espnet_dynenc.checkpoint_jobs.loading import load_model
from espnet_dynenc.deploy.choose import (Row, export_candidates, find_candidates, measure_candidates,
                                         read_text)
from espnet_dynenc.deploy.measure import BACKENDS
from espnet_dynenc.entry import add_model_arguments


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--decode_dir", required=True)
    parser.add_argument("--test_set", default="test")
    parser.add_argument("--wav_scp", required=True)
    parser.add_argument("--text", default=None, help="references (default: text next to --wav_scp)")
    parser.add_argument("--work_dir", default=None, help="exports (default <decode_dir>/deploy)")
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--max_utterances", type=int, default=None)
    return parser


def same(rows: Dict[str, Row], backend: str, reference: str, key: str) -> str:
    mine, theirs = rows[backend].hypotheses, rows[reference].hypotheses
    agree = sum(mine[utt][key] == theirs[utt][key] for utt in mine)
    return f"{agree}/{len(mine)}"


def same_as_supernet(row: Row, decode_dir: Path, test_set: str) -> str:
    """Utterances whose compact-model text equals the supernet decode's ``text`` of that size."""
    folder = decode_dir / test_set / (row.candidate.name if row.candidate.strategy is None else
                                      f"pruned/{row.candidate.strategy}/{row.candidate.depth}")
    decoded = read_text(folder / "text") if (folder / "text").is_file() else {}
    agree = sum(decoded.get(utt) == hyp["text"] for utt, hyp in row.hypotheses.items())
    return f"{agree}/{len(row.hypotheses)}"


def main() -> None:
    args = get_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    decode_dir = Path(args.decode_dir)
    work_dir = Path(args.work_dir) if args.work_dir else decode_dir / "deploy"
    candidates = find_candidates(decode_dir, args.test_set)
    model, _ = load_model(args.asr_train_config, args.asr_model_file)
    exported = export_candidates(model, args.asr_train_config, args.asr_model_file, candidates,
                                 decode_dir / "pruning" / "pruning_plan.yaml", work_dir, BACKENDS)
    text = Path(args.text) if args.text else Path(args.wav_scp).parent / "text"
    rows = measure_candidates(exported, candidates, BACKENDS, args.wav_scp, read_text(text), args.num_threads,
                              args.max_utterances, work_dir)
    by_size: Dict[str, Dict[str, Row]] = {}
    for row in rows:
        by_size.setdefault(row.candidate.name, {})[row.backend] = row
    any_row = rows[0]
    print(f"{len(any_row.hypotheses)} utterances of {args.wav_scp}, {args.num_threads} thread(s), batch 1")
    lines: List[str] = [
        "| size | parameters | bytes PyTorch | bytes ONNX fp32 | bytes ONNX int8 | int8 / fp32 "
        "| RTF PyTorch | RTF ORT fp32 | RTF ORT int8 | ORT fp32 speed-up | ORT int8 speed-up "
        "| peak MB PyTorch / fp32 / int8 | WER PyTorch | WER ORT fp32 | WER ORT int8 "
        "| same tokens fp32 / int8 as PyTorch | PyTorch = supernet text | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size_rows in by_size.items():
        pt, fp, q8 = size_rows["pytorch"], size_rows["onnx_fp32"], size_rows["onnx_int8"]
        diff = exported[name]["onnx"].max_abs_diff
        lines.append(
            f"| {name} | {pt.parameters} | {pt.bytes} | {fp.bytes} | {q8.bytes} | {q8.bytes / fp.bytes:.2f} "
            f"| {pt.rtf:.4f} | {fp.rtf:.4f} | {q8.rtf:.4f} | {pt.rtf / fp.rtf:.2f} | {pt.rtf / q8.rtf:.2f} "
            f"| {pt.peak_memory / 2**20:.0f} / {fp.peak_memory / 2**20:.0f} / {q8.peak_memory / 2**20:.0f} "
            f"| {pt.wer:.2f} | {fp.wer:.2f} | {q8.wer:.2f} "
            f"| {same(size_rows, 'onnx_fp32', 'pytorch', 'token_ids')} / {same(size_rows, 'onnx_int8', 'pytorch', 'token_ids')} "
            f"| {same_as_supernet(pt, decode_dir, args.test_set)} | {diff:.1e} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
