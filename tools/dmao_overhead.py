#!/usr/bin/env python3
"""Print what DMAO cost a finished training run, as a share of its training time.

    tools/venv/bin/python tools/dmao_overhead.py egs2/mini_synth/asr1/exp/asr_train_asr_dmao_raw_en_bpe100

Reads the seconds the model spent scoring groups and running events (kept in the model's
checkpoint, ``dmao._extra_state``) and the training time the job runner wrote at the end of
``train.log`` ("elapsed time N seconds"; else the first and last log timestamps). Both come
from the same run, so the ratio is not disturbed by other runs on the machine.
"""
import argparse
import datetime
import re
import sys
from pathlib import Path

import torch

ELAPSED = re.compile(r"elapsed time (\d+) seconds")
STAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\d+ \(")


def training_seconds(log: Path) -> float:
    text = log.read_text(encoding="utf-8", errors="replace")
    found = ELAPSED.findall(text)
    if found:
        return float(found[-1])
    stamps = STAMP.findall(text)
    if len(stamps) < 2:
        raise ValueError(f"{log}: no 'elapsed time' line and too few timestamps to measure the run")
    first, last = (datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in (stamps[0], stamps[-1]))
    return (last - first).total_seconds()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="experiment directory of a finished DMAO training")
    args = parser.parse_args(argv)
    checkpoint = args.exp_dir / "checkpoint.pth"
    if not checkpoint.is_file():
        sys.exit(f"dmao_overhead: no {checkpoint}")
    model = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    state = model.get("dmao._extra_state")
    if state is None:
        sys.exit(f"dmao_overhead: {checkpoint} is not a DMAO model (no dmao._extra_state)")
    total = training_seconds(args.exp_dir / "train.log")
    scoring, events = float(state["scoring_seconds"]), float(state["event_seconds"])
    print(f"updates: {int(model['num_updates'])}, events at {[e['update'] for e in state['events']]}")
    print(f"training: {total:.1f} s | scoring: {scoring:.2f} s | events: {events:.3f} s")
    print(f"overhead (scoring + events) / training: {100 * (scoring + events) / total:.2f}% (goal < 2%)")


if __name__ == "__main__":
    main()
