#!/usr/bin/env python3
"""Cost of a Dynamic Encoder Size Step-2 update, measured in one run.

1. Time: one Step-2 update of a supernet with sizes {L/3, 2L/3, L} (sandwich rule: all
   three subnets, one shared frontend pass) against the sum of one update of each
   individually trained size (L/3, 2L/3 and L units as 4-, 8- and 12-block Conformers,
   each with its own frontend). Goal: <= 0.8x. Updates include feature extraction from
   the waveform, the backward pass and an AdamW step; timings interleaved, medians.
2. Peak memory: each configuration runs in a fresh process; the peak resident memory of
   one update minus the memory before it. A Step-2 update against a single full-model
   update, with and without ``checkpoint_subnets`` (goal: <= 1.5x with it). Linux only
   (reads ``/proc/self/status``).

Usage: tools/venv/bin/python tools/benchmark_des_training.py [--blocks 12 --d_model 256 ...]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import torch

import espnet_dynenc  # noqa: F401  (keeps ESPnet's import noise quiet, registers the classes)
from espnet2.asr.ctc import CTC
from espnet2.asr.frontend.default import DefaultFrontend

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel
from espnet_dynenc.selection.relaxed_topk import nested_masks

CONFIGS = ("individual_small", "individual_middle", "individual_full", "step2", "step2_checkpointed")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--d_model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measure_memory_of", choices=CONFIGS, help=argparse.SUPPRESS)
    return parser


def build(args, config: str) -> ESPnetSupernetCTCModel:
    torch.manual_seed(0)
    blocks = {"individual_small": args.blocks // 3, "individual_middle": 2 * args.blocks // 3}.get(config, args.blocks)
    encoder = DynamicConformerEncoder(
        80, output_size=args.d_model, attention_heads=args.heads, linear_units=args.ffn, num_blocks=blocks,
        macaron_style=True, rel_pos_type="latest", cnn_module_kernel=31, dropout_rate=0.1,
    )
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(args.vocab - 3)] + ["<sos/eos>"]
    model_conf = {}
    if config.startswith("step2"):
        units = encoder.num_units
        sizes = [units // 3, 2 * units // 3, units]
        masks = nested_masks(torch.rand(units, generator=torch.Generator().manual_seed(0)), sizes)
        model_conf = dict(subnet_sizes=sizes, subnet_masks=[m.int().tolist() for m in masks],
                          sandwich_stochastic_depth=0.3, checkpoint_subnets=config == "step2_checkpointed")
    return ESPnetSupernetCTCModel(
        vocab_size=len(tokens), token_list=tokens, frontend=DefaultFrontend(n_mels=80), specaug=None,
        normalize=None, preencoder=None, encoder=encoder, postencoder=None, decoder=None,
        ctc=CTC(len(tokens), args.d_model), joint_network=None, **model_conf,
    ).train()


def make_batch(args):
    samples = int(args.seconds * 16000)
    generator = torch.Generator().manual_seed(1)
    speech = torch.randn(args.batch, samples, generator=generator)
    lengths = torch.tensor([samples - 4000 * i for i in range(args.batch)])
    text = torch.randint(2, args.vocab - 1, (args.batch, int(args.seconds * 3)), generator=generator)
    return speech, lengths, text, torch.full((args.batch,), text.size(1))


def updater(model, batch, optimizer_class=torch.optim.AdamW):
    optimizer = optimizer_class(model.parameters(), lr=1e-4)

    def update():
        optimizer.zero_grad(set_to_none=True)
        loss, _, _ = model(*[t.clone() for t in batch])
        loss.backward()
        optimizer.step()

    return update


def measure_memory(args) -> None:
    """Child process: print the peak memory of one update above the memory before it.

    The process's high-water mark is reset first (Linux ``clear_refs``), so earlier peaks,
    such as importing ESPnet, do not count. It is the first update, with plain SGD: freed
    memory that the allocator keeps after a warm-up would hide the peak, and SGD without
    momentum allocates no optimizer state inside the window.
    """
    model = build(args, args.measure_memory_of)
    update = updater(model, make_batch(args), torch.optim.SGD)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    update()
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - before) / 1024}))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_in_fresh_process(args, config: str) -> float:
    cmd = [sys.executable, __file__, "--measure_memory_of", config] + [
        f"--{name}={getattr(args, name)}" for name in ("blocks", "d_model", "heads", "ffn", "batch", "seconds",
                                                       "vocab", "threads")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def interleaved_medians(fns: Dict[str, callable], repeats: int) -> Dict[str, float]:
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    args = get_parser().parse_args()
    torch.set_num_threads(args.threads)
    if args.measure_memory_of:
        measure_memory(args)
        return
    batch = make_batch(args)
    timed = ("individual_small", "individual_middle", "individual_full", "step2")
    t = interleaved_medians({c: updater(build(args, c), batch) for c in timed}, args.repeats)
    individual = t["individual_small"] + t["individual_middle"] + t["individual_full"]
    print(f"[1] one update, {args.blocks} blocks d{args.d_model}, batch {args.batch} x {args.seconds:.0f} s, "
          f"medians of {args.repeats}")
    print(f"    individually trained: {args.blocks // 3} blocks {t['individual_small']:.2f} s + "
          f"{2 * args.blocks // 3} blocks {t['individual_middle']:.2f} s + {args.blocks} blocks "
          f"{t['individual_full']:.2f} s = {individual:.2f} s")
    print(f"    Step-2 update (3 subnets, shared frontend): {t['step2']:.2f} s | ratio {t['step2'] / individual:.2f} "
          f"(goal <= 0.80) | {t['step2'] / t['individual_full']:.2f}x one full-model update")
    memory = {c: memory_in_fresh_process(args, c) for c in ("individual_full", "step2", "step2_checkpointed")}
    print("[2] peak memory of one update above the memory before it (fresh process each)")
    print(f"    full model {memory['individual_full']:.0f} MiB | Step-2 {memory['step2']:.0f} MiB "
          f"({memory['step2'] / memory['individual_full']:.2f}x) | Step-2 with checkpoint_subnets "
          f"{memory['step2_checkpointed']:.0f} MiB ({memory['step2_checkpointed'] / memory['individual_full']:.2f}x, "
          "goal <= 1.5x)")


if __name__ == "__main__":
    main()
