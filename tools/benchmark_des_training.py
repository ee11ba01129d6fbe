#!/usr/bin/env python3
"""Cost of a Dynamic Encoder Size Step-2 update, measured in one run.

1. Time: one Step-2 update of a supernet with sizes {L/3, 2L/3, L} (sandwich rule: all
   three subnets, one shared frontend pass) against the sum of one update of each
   individually trained size (L/3, 2L/3 and L units as 4-, 8- and 12-block Conformers,
   each with its own frontend). Goal: <= 0.8x. Updates include feature extraction from
   the waveform, the backward pass and an AdamW step; timings interleaved, medians.
2. Peak memory: each configuration runs in a fresh process; the peak resident memory of
   one update minus the memory before it. A Step-2 update against a single full-model
   update, with and without ``checkpoint_subnets`` (goal: <= 1.5x with it). On the CPU the
   peak resident memory (Linux only: reads ``/proc/self/status``); on a CUDA device the
   peak of torch's device allocator.

``--device cuda`` runs it on a GPU (the clock waits for the device after every update);
``--amp`` adds what ESPnet's ``--use_amp true`` does there: autocast to bfloat16 (float16
where the device has no bfloat16) and a gradient scaler. The paper configs' model and batch
(LibriSpeech: 12 blocks d 512, 8 heads, FFN 2048, 150 s of audio per batch, BPE 5000):
``--blocks 12 --d_model 512 --heads 8 --ffn 2048 --batch 10 --seconds 15 --vocab 5000``.

Usage: tools/venv/bin/python tools/benchmark_des_training.py [--blocks 12 --d_model 256 ...] [--device cuda [--amp]]
"""
import argparse
import json
import subprocess
import sys

import torch

import espnet_dynenc  # noqa: F401  (keeps ESPnet's import noise quiet, registers the classes)
from espnet2.asr.ctc import CTC
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.train.trainer import autocast_args  # what ESPnet's --use_amp autocasts to here

from espnet_dynenc.analysis.timing import add_device_argument, interleaved_medians, parse_args_with_device
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
    add_device_argument(parser)
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision as ESPnet's --use_amp true (CUDA devices only)")
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
    ).to(args.device).train()


def make_batch(args):
    samples = int(args.seconds * 16000)
    generator = torch.Generator().manual_seed(1)
    speech = torch.randn(args.batch, samples, generator=generator)
    lengths = torch.tensor([samples - 4000 * i for i in range(args.batch)])
    text = torch.randint(2, args.vocab - 1, (args.batch, int(args.seconds * 3)), generator=generator)
    batch = speech, lengths, text, torch.full((args.batch,), text.size(1))
    return tuple(t.to(args.device) for t in batch)


# ESPnet's trainer: bfloat16 where the GPU has it, else CUDA autocast's default, float16
AMP_DTYPE = autocast_args.get("dtype", torch.float16)


def updater(model, batch, args, optimizer_class=torch.optim.AdamW):
    optimizer = optimizer_class(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda") if args.amp else None

    def update():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(args.device.type, dtype=AMP_DTYPE, enabled=args.amp):
            loss, _, _ = model(*[t.clone() for t in batch])
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return update


def measure_memory(args) -> None:
    """Child process: print the peak memory of one update above the memory before it.

    On the CPU the process's high-water mark is reset first (Linux ``clear_refs``), so
    earlier peaks, such as importing ESPnet, do not count; on a CUDA device the allocator's
    peak is reset. It is the first update, with plain SGD: freed memory that the allocator
    keeps after a warm-up would hide the peak, and SGD without momentum allocates no
    optimizer state inside the window.
    """
    model = build(args, args.measure_memory_of)
    update = updater(model, make_batch(args), args, torch.optim.SGD)
    if args.device.type == "cuda":
        torch.cuda.synchronize(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
        before = torch.cuda.memory_allocated(args.device)
        update()
        torch.cuda.synchronize(args.device)
        peak = torch.cuda.max_memory_allocated(args.device) - before
        print(json.dumps({"peak_mib": peak / 2 ** 20}))
        return
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
                                                       "vocab", "threads", "device")]
    cmd += ["--amp"] if args.amp else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


def main() -> None:
    parser = get_parser()
    args = parse_args_with_device(parser)
    if args.amp and args.device.type != "cuda":
        parser.error(f"--amp needs a CUDA device (--device cuda), got --device {args.device}")
    torch.set_num_threads(args.threads)
    if args.measure_memory_of:
        measure_memory(args)
        return
    batch = make_batch(args)
    timed = ("individual_small", "individual_middle", "individual_full", "step2")
    t = interleaved_medians({c: updater(build(args, c), batch, args) for c in timed}, args.repeats, args.device)
    individual = t["individual_small"] + t["individual_middle"] + t["individual_full"]
    precision = f"autocast {str(AMP_DTYPE).split('.')[-1]} + gradient scaler" if args.amp else "float32"
    print(f"[1] one update, {args.blocks} blocks d{args.d_model}, batch {args.batch} x {args.seconds:.0f} s, "
          f"medians of {args.repeats}, {args.device} ({precision})")
    print(f"    individually trained: {args.blocks // 3} blocks {t['individual_small']:.2f} s + "
          f"{2 * args.blocks // 3} blocks {t['individual_middle']:.2f} s + {args.blocks} blocks "
          f"{t['individual_full']:.2f} s = {individual:.2f} s")
    print(f"    Step-2 update (3 subnets, shared frontend): {t['step2']:.2f} s | ratio {t['step2'] / individual:.2f} "
          f"(goal <= 0.80) | {t['step2'] / t['individual_full']:.2f}x one full-model update")
    memory = {c: memory_in_fresh_process(args, c) for c in ("individual_full", "step2", "step2_checkpointed")}
    where = "device allocator" if args.device.type == "cuda" else "resident memory"
    print(f"[2] peak {where} of one update above the memory before it (fresh process each)")
    print(f"    full model {memory['individual_full']:.0f} MiB | Step-2 {memory['step2']:.0f} MiB "
          f"({memory['step2'] / memory['individual_full']:.2f}x) | Step-2 with checkpoint_subnets "
          f"{memory['step2_checkpointed']:.0f} MiB ({memory['step2_checkpointed'] / memory['individual_full']:.2f}x, "
          "goal <= 1.5x)")


if __name__ == "__main__":
    main()
