#!/usr/bin/env python3
"""Speed of ``dynamic_conformer``: against ESPnet's Conformer, and of its subnets.

Prints, measured in one run (timings interleaved, medians of ``--repeats``):

1. full-size ``dynamic_conformer`` vs ESPnet's ``ConformerEncoder``, forward+backward
   time ratio in training mode (goal <= 1.05);
2. for subnets keeping 1/3 and 2/3 of the units (spread evenly over the encoder): the
   speed-up of the blocks alone (subsampling frontend excluded, inference mode) against
   their FLOPs ratio (goal: speed-up >= 0.9 x the FLOPs ratio);
3. end to end (waveform -> features -> encoder -> CTC head -> greedy search) the speed-up
   against the Amdahl bound ``1 / (f + (1 - f) * kept_flops / all_flops)``, f = the
   measured share of the full model's time outside the blocks.

On a CUDA device (``--device cuda``) the clock waits for the device after every call.

Usage: tools/venv/bin/python tools/benchmark_encoder.py [--blocks 12 --d_model 256 ...] [--device cuda]
"""
import argparse
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

import espnet_dynenc  # noqa: F401  (registers the classes; keeps ESPnet's import noise quiet)
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.frontend.default import DefaultFrontend

from espnet_dynenc.analysis.timing import add_device_argument, interleaved_medians, parse_args_with_device
from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.greedy_ctc import greedy_ctc_decode
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel, SubnetPass


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--d_model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=1024)
    parser.add_argument("--kernel", type=int, default=31)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="utterance duration")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=500)
    add_device_argument(parser)
    return parser


def encoder_conf(args) -> Dict:
    return dict(output_size=args.d_model, attention_heads=args.heads, linear_units=args.ffn,
                num_blocks=args.blocks, cnn_module_kernel=args.kernel, macaron_style=True,
                rel_pos_type="latest", dropout_rate=0.1)


def spread_mask(keep: int, num_units: int) -> List[bool]:
    """Keep ``keep`` units spread evenly, so every module kind is represented."""
    kept = {int(i * num_units / keep) for i in range(keep)}
    return [u in kept for u in range(num_units)]


def flops_of(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def compare_with_stock(args, feats, lengths) -> None:
    torch.manual_seed(0)
    stock = ConformerEncoder(80, **encoder_conf(args)).to(args.device).train()
    dynamic = DynamicConformerEncoder(80, **encoder_conf(args)).to(args.device).train()
    dynamic.load_state_dict(stock.state_dict())

    def step(encoder):
        def run():
            encoder.zero_grad(set_to_none=True)
            encoder(feats, lengths)[0].sum().backward()
        return run

    t = interleaved_medians({"stock": step(stock), "dynamic": step(dynamic)}, args.repeats, args.device)
    print(f"[1] training step (forward+backward), {args.blocks} blocks d{args.d_model}, batch {args.batch} x "
          f"{args.seconds:.0f} s, {args.device}")
    print(f"    ESPnet ConformerEncoder {t['stock']:.3f} s | dynamic_conformer {t['dynamic']:.3f} s | "
          f"ratio {t['dynamic'] / t['stock']:.3f} (goal <= 1.05)")


def build_model(args) -> ESPnetSupernetCTCModel:
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(80, **encoder_conf(args))
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(args.vocab - 3)] + ["<sos/eos>"]
    return ESPnetSupernetCTCModel(
        vocab_size=len(tokens), token_list=tokens, frontend=DefaultFrontend(n_mels=80), specaug=None,
        normalize=None, preencoder=None, encoder=encoder, postencoder=None, decoder=None,
        ctc=CTC(len(tokens), args.d_model), joint_network=None,
    ).to(args.device).eval()


@torch.no_grad()
def compare_subnets(args) -> None:
    model = build_model(args)
    num_units = model.encoder.num_units
    samples = int(args.seconds * 16000)
    speech = torch.randn(args.batch, samples, device=args.device)
    speech_lengths = torch.full((args.batch,), samples, device=args.device)
    embedded = model.embed(speech, speech_lengths)
    subnets = {"all": [True] * num_units,
               "2/3": spread_mask(2 * num_units // 3, num_units),
               "1/3": spread_mask(num_units // 3, num_units)}

    def blocks(mask):
        return lambda: model.encode_subnet(embedded, SubnetPass(0, tuple(mask), 1.0))

    def end_to_end(mask):
        def run():
            emb = model.embed(speech, speech_lengths)
            out, _, lens = model.encode_subnet(emb, SubnetPass(0, tuple(mask), 1.0))
            greedy_ctc_decode(model.ctc.log_softmax(out), lens)
        return run

    block_flops = {name: flops_of(blocks(mask)) for name, mask in subnets.items()}
    block_time = interleaved_medians({name: blocks(mask) for name, mask in subnets.items()}, args.repeats, args.device)
    e2e_time = interleaved_medians({name: end_to_end(mask) for name, mask in subnets.items()}, args.repeats,
                                   args.device)
    print(f"[2] blocks only (frontend excluded), inference, batch {args.batch} x {args.seconds:.0f} s")
    for name in ("2/3", "1/3"):
        flops_ratio = block_flops["all"] / block_flops[name]
        speedup = block_time["all"] / block_time[name]
        print(f"    keep {name:>3} of units: FLOPs ratio {flops_ratio:.2f}x | measured speed-up {speedup:.2f}x | "
              f"speed-up / FLOPs ratio {speedup / flops_ratio:.2f} (goal >= 0.90)")
    outside = max(e2e_time["all"] - block_time["all"], 0.0) / e2e_time["all"]
    print(f"[3] end to end (features + encoder + CTC head + greedy); share outside the blocks f = {outside:.2f}")
    for name in ("2/3", "1/3"):
        kept = block_flops[name] / block_flops["all"]
        bound = 1.0 / (outside + (1 - outside) * kept)
        speedup = e2e_time["all"] / e2e_time[name]
        print(f"    keep {name:>3} of units: measured {speedup:.2f}x | Amdahl bound {bound:.2f}x | "
              f"{speedup / bound:.2f} of the bound")


def main() -> None:
    parser = get_parser()
    args = parse_args_with_device(parser)
    torch.set_num_threads(args.threads)
    frames = int(args.seconds * 100)
    feats = torch.randn(args.batch, frames, 80, device=args.device)
    lengths = torch.tensor([frames - 37 * i for i in range(args.batch)], device=args.device)
    compare_with_stock(args, feats, lengths)
    compare_subnets(args)


if __name__ == "__main__":
    main()
