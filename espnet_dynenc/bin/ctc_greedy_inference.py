"""Decode a data set with batched greedy CTC, for several subnet sizes in one run.

The features and the subsampling frontend run once per batch; every requested size then
runs its own blocks and CTC head. For each size S it writes ESPnet's files::

    <output_dir>/<S>/text, token, token_int, score     (lines "<utt> <value>")
    <output_dir>/<S>/decode_stats.yaml                 (rtf, parameters, flops_per_second, ...)

With ``--pruning_plan`` (``prune_on_demand``'s pruning_plan.yaml) it also decodes the
plan's subnet with the blocks of every strategy and depth removed (layer pruning on
demand), into ``<output_dir>/pruned/<strategy>/<depth>/`` with the same files, and that
subnet whole (its reference). All targets share each batch, so their real-time factors
are measured side by side; targets that remove the same blocks are computed once.

The real-time factor of a size counts the shared frontend plus that size's own blocks,
head and search: what a deployment of that size alone would spend. Outputs are written
under temporary names and renamed when the whole set is decoded.
"""
import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import humanfriendly
import torch
import yaml

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

from espnet2.tasks.asr import ASRTask
from espnet2.text.build_tokenizer import build_tokenizer
from espnet2.text.token_id_converter import TokenIDConverter
from espnet2.utils.types import str2triple_str, str_or_none

from espnet_dynenc.analysis.complexity import subnet_complexity
from espnet_dynenc.atomic_files import write_lines_atomically, write_text_atomically
from espnet_dynenc.decode.greedy_ctc import greedy_ctc_decode
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel, SubnetPass

OUTPUT_FILES = ("text", "token", "token_int", "score")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--asr_train_config", required=True, help="config.yaml of the trained model")
    parser.add_argument("--asr_model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help="e.g. dump/raw/test/wav.scp,speech,sound (repeatable)")
    parser.add_argument("--key_file", type=str_or_none, default=None, help="decode only these utterances")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--subnets", type=str, default="",
                        help='sizes to decode, e.g. "16 32 48" (default: every size of the model)')
    parser.add_argument("--skip_blocks", type=int, nargs="*", default=[],
                        help="0-based encoder blocks removed at run time (all sizes)")
    parser.add_argument("--pruning_plan", type=str_or_none, default=None,
                        help="pruning_plan.yaml of prune_on_demand: also decode every strategy and depth in it")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float16", "bfloat16", "float32", "float64"])
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--fs", type=int, default=None,
                        help="sampling rate of the audio, for the RTF (default: the training config's "
                             "frontend_conf.fs, else 16000)")
    parser.add_argument("--flops_reference_seconds", type=float, default=10.0,
                        help="utterance duration at which FLOPs per second are counted")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    parser.add_argument("--config", default=None,
                        help="YAML file of default values for these options (asr.sh's --inference_config)")
    return parser


def parse_args(cmd: Optional[List[str]] = None) -> argparse.Namespace:
    """Command line over ``--config`` defaults; an unknown key in the config is an error."""
    parser = get_parser()
    args = parser.parse_args(cmd)
    if args.config is None:
        return args
    with open(args.config, encoding="utf-8") as f:
        defaults = yaml.safe_load(f) or {}
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(defaults) - known)
    if unknown:
        parser.error(f"--config {args.config}: unknown option(s) {unknown}")
    parser.set_defaults(**defaults)
    return parser.parse_args(cmd)


def sampling_rate(args: argparse.Namespace, train_args) -> int:
    if args.fs is not None:
        return args.fs
    fs = (getattr(train_args, "frontend_conf", None) or {}).get("fs", 16000)
    return int(humanfriendly.parse_size(fs)) if isinstance(fs, str) else int(fs)


def parse_sizes(text: str, model: ESPnetSupernetCTCModel) -> List[int]:
    """``"16 32"`` or ``"16,32"`` -> [16, 32]; empty -> every size; unknown size -> ValueError."""
    if not text.strip():
        return list(model.subnet_sizes)
    try:
        sizes = [int(tok) for tok in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--subnets: '{text}' is not a list of integers") from None
    for size in sizes:
        if size not in model.subnet_sizes:
            raise ValueError(f"--subnets: {size} is not one of this model's sizes {model.subnet_sizes}")
    return sizes


def build_text_converter(train_args):
    token_type = getattr(train_args, "token_type", None)
    bpemodel = getattr(train_args, "bpemodel", None)
    if token_type is None or (token_type == "bpe" and bpemodel is None):
        return None
    if token_type == "bpe":
        return build_tokenizer(token_type=token_type, bpemodel=bpemodel)
    return build_tokenizer(token_type=token_type)


@dataclass(frozen=True)
class DecodeTarget:
    """One encoder configuration to decode: a subnet size with some blocks removed."""

    out_dir: str  # relative to --output_dir
    size: int
    skip_blocks: Tuple[int, ...]
    labels: Tuple[Tuple[str, object], ...] = ()  # extra decode_stats entries


def size_targets(sizes: Sequence[int], skip_blocks: Sequence[int]) -> List[DecodeTarget]:
    return [DecodeTarget(str(size), size, tuple(skip_blocks)) for size in sizes]


def pruning_targets(plan_file: str, model: ESPnetSupernetCTCModel) -> List[DecodeTarget]:
    """``pruned/<strategy>/<depth>`` targets of a prune_on_demand plan; a plan for another model is an error."""
    path = Path(plan_file)
    if not path.is_file():
        raise FileNotFoundError(f"--pruning_plan: no such file: {plan_file}")
    plan = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for key in ("subnet", "num_blocks", "skip_blocks"):
        if key not in plan:
            raise ValueError(f"--pruning_plan {plan_file}: no '{key}' (is it prune_on_demand's pruning_plan.yaml?)")
    if plan["num_blocks"] != model.encoder.num_blocks or plan["subnet"] not in model.subnet_sizes:
        raise ValueError(f"--pruning_plan {plan_file}: made for subnet {plan['subnet']} of a {plan['num_blocks']}-block "
                         f"encoder; this model has {model.encoder.num_blocks} blocks and sizes {model.subnet_sizes}")
    return [DecodeTarget(f"pruned/{strategy}/{depth}", int(plan["subnet"]), tuple(int(b) for b in removed),
                         (("strategy", strategy), ("depth", int(depth))))
            for strategy, by_depth in plan["skip_blocks"].items() for depth, removed in by_depth.items()]


class SubnetWriter:
    """Collects one size's results and writes them atomically at the end."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.lines: Dict[str, List[str]] = {name: [] for name in OUTPUT_FILES}
        self.seconds = 0.0
        self.audio_seconds = 0.0

    def add(self, key: str, token_ids: Sequence[int], tokens: Sequence[str], text: str, score: float) -> None:
        self.lines["token_int"].append(f"{key} {' '.join(map(str, token_ids))}".rstrip())
        self.lines["token"].append(f"{key} {' '.join(tokens)}".rstrip())
        self.lines["text"].append(f"{key} {text}".rstrip())
        self.lines["score"].append(f"{key} {score:.4f}")

    def finish(self, stats: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "decode_stats.yaml").unlink(missing_ok=True)
        for name, lines in self.lines.items():
            write_lines_atomically(self.out_dir / name, lines)
        # Written last: its presence marks a finished size.
        write_text_atomically(self.out_dir / "decode_stats.yaml", yaml.safe_dump(stats, sort_keys=False))


@torch.no_grad()
def decode(args: argparse.Namespace) -> None:
    for path in (args.asr_train_config, args.asr_model_file):
        if not Path(path).is_file():
            raise FileNotFoundError(f"ctc_greedy_inference: no such file: {path}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    device = "cuda" if args.ngpu > 0 else "cpu"
    model, train_args = ASRTask.build_model_from_file(args.asr_train_config, args.asr_model_file, device)
    if not isinstance(model, ESPnetSupernetCTCModel):
        raise ValueError(f"{args.asr_train_config}: model is {type(model).__name__}, expected model: supernet_ctc")
    model.to(dtype=getattr(torch, args.dtype)).eval()
    sizes = parse_sizes(args.subnets, model)
    pruned = pruning_targets(args.pruning_plan, model) if args.pruning_plan else []
    if pruned and pruned[0].size not in sizes:
        sizes.append(pruned[0].size)  # the whole subnet: the reference of its pruned forms
    targets = size_targets(sizes, args.skip_blocks) + pruned
    fs = sampling_rate(args, train_args)
    tokenizer = build_text_converter(train_args)
    converter = TokenIDConverter(token_list=model.token_list)
    blank_id = model.blank_id
    loader = ASRTask.build_streaming_iterator(
        args.data_path_and_name_and_type,
        dtype=args.dtype,
        batch_size=args.batch_size,
        key_file=args.key_file,
        num_workers=args.num_workers,
        preprocess_fn=ASRTask.build_preprocess_fn(train_args, False),
        collate_fn=ASRTask.build_collate_fn(train_args, False),
        allow_variable_data_keys=False,
        inference=True,
    )
    out_root = Path(args.output_dir)
    writers = {target: SubnetWriter(out_root / target.out_dir) for target in targets}
    # Targets that run the same encoder (e.g. two strategies removing the same blocks) share
    # one computation per batch and its time.
    same_encoder: Dict[Tuple[int, Tuple[int, ...]], List[SubnetWriter]] = {}
    for target in targets:
        same_encoder.setdefault((target.size, target.skip_blocks), []).append(writers[target])
    frontend_seconds = 0.0
    audio_seconds = 0.0
    num_utts = 0
    for keys, batch in loader:
        speech = batch["speech"].to(device, dtype=getattr(torch, args.dtype))
        lengths = batch["speech_lengths"].to(device)
        audio_seconds += float(lengths.sum()) / fs
        num_utts += len(keys)
        start = time.perf_counter()
        embedded = model.embed(speech, lengths)
        frontend_seconds += time.perf_counter() - start
        for (size, skip_blocks), group in same_encoder.items():
            start = time.perf_counter()
            subnet = SubnetPass(size, model.mask_for(size), 1.0)
            out, _, out_lens = model.encode_subnet(embedded, subnet, skip_blocks)
            hyps = greedy_ctc_decode(model.ctc_for(size).log_softmax(out), out_lens, blank_id)
            seconds = time.perf_counter() - start
            for key, hyp in zip(keys, hyps):
                tokens = converter.ids2tokens(hyp.token_ids)
                text = tokenizer.tokens2text(tokens) if tokenizer is not None else " ".join(tokens)
                for writer in group:
                    writer.add(key, hyp.token_ids, tokens, text, hyp.score)
            for writer in group:
                writer.seconds += seconds
        logging.info("decoded %d utterances (%.1f s of audio)", num_utts, audio_seconds)
    complexities = {(size, skip): subnet_complexity(model, size, args.flops_reference_seconds, fs, skip)
                    for size, skip in same_encoder}
    for target, writer in writers.items():
        complexity = complexities[(target.size, target.skip_blocks)]
        decode_seconds = frontend_seconds + writer.seconds
        writer.finish({
            "subnet": target.size,
            **dict(target.labels),
            "skip_blocks": list(target.skip_blocks),
            "num_utterances": num_utts,
            "audio_seconds": round(audio_seconds, 3),
            "decode_seconds": round(decode_seconds, 4),
            "rtf": round(decode_seconds / audio_seconds, 6) if audio_seconds > 0 else None,
            "parameters": complexity.parameters,
            "flops_per_second": complexity.flops_per_second,
        })
        logging.info("%s: %d utterances, RTF %.4f", target.out_dir, num_utts, decode_seconds / max(audio_seconds, 1e-9))


def main(cmd: Optional[List[str]] = None) -> None:
    args = parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        decode(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"ctc_greedy_inference: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
