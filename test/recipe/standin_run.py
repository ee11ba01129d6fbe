"""STAND-IN for a recipe's run.sh (test only): it trains and decodes NOTHING.

The run_comparison test proves the comparison's orchestration (the order of the runs, the
options each run gets, skipping what is summarised, continuing after a failure, the report)
and needs experiment dirs, not models. This script takes run.sh's options and writes the
experiment dir that stages 11-13 of asr.sh would leave, with made-up error rates; every call
is recorded in ``exp/standin_calls.jsonl`` so the test can check what run.sh was asked to do.
Real trainings of each method's config are proven by their own tests; a real experiment is
summarised by test_mini_synth_recipe.

Environment: STANDIN_CHECKPOINT, a checkpoint.pth to copy into each experiment (the update
count the report reads, the reporter that ranks the epochs); STANDIN_FAIL, a tag (<method>_seed<seed>) whose training fails once;
STANDIN_WER_SHIFT, points added to every made-up error rate (a test set made again).
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
import yaml

from recipe.fabricated import TRAIN_LOG, decoded, write_pruning_plan

DECODE_DIR = "decode_ctc_greedy_asr_model_valid.cer_ctc.ave"  # as asr.sh names it for these options
FULL_SIZE = 8  # modules of the tiny models of the test's plan
BASE_WER = {"des_simple_topk": 1.0, "des_zero_out": 2.0, "aux_loss": 1.5}  # added to the WER trained alone


def wer_alone(size: int, seed: int) -> float:
    return (10.0 if size < FULL_SIZE else 6.0) + 0.2 * seed + float(os.environ.get("STANDIN_WER_SHIFT", "0"))


def parse(argv):
    p = argparse.ArgumentParser(prog="run.sh (stand-in)")
    p.add_argument("--stage", type=int, default=1)
    p.add_argument("--stop_stage", type=int, default=14)
    p.add_argument("--asr_config", default="conf/train_asr_des.yaml")
    p.add_argument("--asr_tag", default="")
    p.add_argument("--asr_args", default="")
    p.add_argument("--subnets", default="")
    p.add_argument("--size_checkpoints", default="true")
    p.add_argument("--prune_depths", default="")
    p.add_argument("--prune_strategies", default="")
    return p.parse_known_args(argv)[0]


def method_of(tag: str) -> tuple:
    method, _, seed = tag.rpartition("_seed")
    return method, int(seed)


def write_experiment(exp: Path, args) -> str:
    """The decoding of the test set as asr.sh names and lays it out; returns its dir name."""
    method, seed = method_of(args.asr_tag)
    config = yaml.safe_load(Path(args.asr_config).read_text())
    criteria = {c[1] for c in config.get("best_model_criterion", [])}
    sizes = [int(s) for s in args.subnets.split()] or [FULL_SIZE]
    # asr.sh decodes into ..._per_size when a decoded size has a checkpoint of its own
    depths = [int(d) for d in args.prune_depths.split()]
    per_size = args.size_checkpoints == "true" and (
        any(f"cer_ctc_{size}" in criteria for size in sizes)
        or any(f"cer_interctc_layer{depth}" in criteria for depth in depths))
    decode_dir = DECODE_DIR + ("_per_size" if per_size else "")
    shutil.rmtree(exp / decode_dir, ignore_errors=True)
    root = exp / decode_dir / "test"
    root.mkdir(parents=True)
    for size in sizes:
        own = decode_dir.endswith("_per_size") and f"cer_ctc_{size}" in criteria
        wer = wer_alone(size, seed) + BASE_WER.get(method, 0.0) - (0.5 if own else 0.0)
        if method == "dmao":
            wer -= 0.5
        decoded(root / str(size), 100 * size, 1e6 * size, wer,
                checkpoint=f"valid.cer_ctc_{size}.ave.pth" if own else "valid.cer_ctc.ave.pth")
    if args.prune_depths:
        strategies = args.prune_strategies.split()
        skip = {s: {d: [FULL_SIZE // 4 - d - (1 if s == "top" else 0)] for d in depths}
                for s in strategies}
        write_pruning_plan(exp / decode_dir, FULL_SIZE, FULL_SIZE // 4, skip,
                           {s: 0.05 + 0.01 * i for i, s in enumerate(strategies)})
        for strategy in strategies:
            for depth in depths:
                # a depth with its own checkpoint (find_depth_checkpoints) does a little better
                own = per_size and f"cer_interctc_layer{depth}" in criteria
                decoded(root / "pruned" / strategy / str(depth), 400, 4e6,
                        (14.0 if strategy == "top" else 12.0) - (0.5 if own else 0.0), strategy=strategy, depth=depth,
                        checkpoint=f"valid.cer_interctc_layer{depth}.ave.pth" if own else "valid.cer_ctc.ave.pth")
    (root / ".done").write_text("stand-in\n")
    return decode_dir


def main(argv) -> int:
    args = parse(argv)
    exp_root = Path("exp")
    exp_root.mkdir(exist_ok=True)
    with open(exp_root / "standin_calls.jsonl", "a") as calls:
        calls.write(json.dumps(argv) + "\n")
    if args.stage <= 10:
        print("Stage 1: data preparation (stand-in: nothing prepared)")
        if args.stop_stage <= 10:
            return 0
    exp = exp_root / f"asr_{args.asr_tag}"
    if args.stage <= 11:
        if os.environ.get("STANDIN_FAIL") == args.asr_tag and not (exp_root / "standin_failed").exists():
            (exp_root / "standin_failed").write_text(args.asr_tag)
            print(f"Stage 11: training {exp} failed (stand-in: a failure on request)")
            return 1
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "train.log").write_text(TRAIN_LOG.format(m=2))
        shutil.copy(os.environ["STANDIN_CHECKPOINT"], exp / "checkpoint.pth")
        shutil.copy(args.asr_config, exp / "config.yaml")
        for epoch in (1, 2):  # the kept epochs that ESPnet's averaging reads
            torch.save({"w": torch.tensor([float(epoch)])}, exp / f"{epoch}epoch.pth")
        print(f"Stage 11: training finished after 2 epochs (stand-in: nothing trained) {exp}")
    decode_dir = write_experiment(exp, args)
    print(f"Stage 12: decoding {decode_dir} (stand-in: nothing decoded)")
    print("Stage 13: scoring (stand-in)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
