#!/usr/bin/env python3
"""Write the paper-parity training configs into conf/paper/<corpus>/.

One source for every shipped recipe config, so schedules are computed rather than typed:

* Dynamic Encoder Size supernets (Xu et al., Interspeech 2024) with Simple-Top-k and
  Iterative-Zero-Out, using the released schedules (RETURNN updates of ~150 s audio: the
  configs keep that batch size and those update counts);
* the individually trained model of every size (same number of updates);
* the Aux-Loss early-exit model (CTC heads after blocks 4/8/12, weights 0.3/0.3/1.0);
* InterCTC + linear stochastic depth models for layer pruning on demand (Lee et al., 2021),
  Conformer and Transformer;
* DMAO grow-and-drop reallocation (Xu et al., 2025) on the 12-block Conformer: one event at
  15% of training moving rho = 0.15 (LibriSpeech) / 0.2 (TED-LIUM v2) of the prunable
  parameters; its baseline of the same size is the uniform ``train_individual_48.yaml``.

Every schedule is the released one (``returnn.config`` of rwth-i6/returnn-experiments
``2024-dynamic-encoder-size/``): updates in all, Step-1 schedules and zero-out counts, Step-1
and Step-2 stochastic depth, straight-through (LibriSpeech) or soft (TED-LIUM v2)
Simple-Top-k, the LR schedule, the optimizer (AdamW with constant betas, decay exempting
biases and norm weights), no gradient clipping; what cannot follow the released setup in
ESPnet is listed in each file's header. Run ``python tools/make_paper_configs.py --check``
to verify that the committed files are up to date (the tests do).
"""
import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "conf" / "paper"
# ~150 s of 16 kHz audio per update, all ranks together. batch_type "length" counts the
# speech samples; "numel" would also count transcript tokens x vocabulary size (the shape
# files end in it), leaving ~70 s of audio per update with BPE 5000.
BATCH_BINS = 150 * 16000

# The released RETURNN configs (rwth-i6/returnn-experiments 2024-dynamic-encoder-size/):
# LibriSpeech 600 sub-epochs of 1220 updates (30 epochs), TED-LIUM v2 250 of 1400 (50 epochs);
# one-cycle LR 4e-6 -> 4e-4 -> 4e-6 -> 1e-8, the last phase 10% (LBS) / 12% (TED) of training;
# optimizer = {"class": "adamw", "epsilon": 1e-16, "weight_decay": 0.001} in every released file
# and gradient_clip = 0.0 (no clipping); module order FFN, conv, MHSA, FFN (scales 0.5, 1, 1,
# 0.5); the conv module normalises with a layer norm over channels.
# RETURNN's updater (its grouping as of May 2023; the setups date from October 2023) hands that
# dict to torch.optim.AdamW: no betas given, so torch's default (0.9, 0.999), and nothing changes
# them during training (ESPnet's onecyclelr would cycle beta1 between 0.95 and 0.85 unless
# cycle_momentum is off). Its weight decay is decoupled (AdamW) and split into two parameter
# groups: parameters named "*bias" and those of LayerNorm / Embedding modules get none, every
# other parameter (the selector's gates included) gets 1e-3. ESPnet's exclude_weight_decay with
# biases and norms exempt makes the same split for these models.
ADAMW_CONF = {"betas": [0.9, 0.999], "eps": 1.0e-16, "weight_decay": 1.0e-3}
CORPORA = {
    "librispeech": dict(d=512, heads=8, ffn=2048, dropout=0.1, attention_dropout=0.1, epochs=30,
                        total_updates=600 * 1220, subepoch_updates=1220, pct_start=270 / 600),
    "tedlium2": dict(d=384, heads=6, ffn=1536, dropout=0.2, attention_dropout=0.1, epochs=50,
                     total_updates=250 * 1400, subepoch_updates=1400, pct_start=110 / 250),
}
PEAK_LR = 4.0e-4
AUX_LOSS_PEAK_LR = 3.0e-4  # the released LibriSpeech Aux-Loss config
UNIT_ORDER = ["ffn", "conv", "mhsa", "ffn"]
DEVIATIONS = (
    "Deviations from the released RETURNN setup: ESPnet's conv2d subsampling frontend instead of the "
    "VGG4LayerAct frontend; 80 log-mel features and ESPnet's SpecAugment instead of the released feature "
    "pipelines; ESPnet's BPE/char CTC targets instead of EOW phonemes; the LR schedule is torch's three-phase "
    "OneCycleLR with the released peak, start, end and phase lengths."
)


# (corpus, sizes) -> the released schedules (selector_conf and the Step-1 / Step-2 stochastic depth)
SIMPLE_TOPK = {
    ("librispeech", (16, 32, 48)): dict(conf=dict(updates_per_k_step=14640, k_reduction=1), step1_depth=0.0,
                                        step2_depth=0.3),
    # TED-LIUM v2: the soft relaxation (no straight-through), as the released code
    ("tedlium2", (16, 32, 48)): dict(conf=dict(updates_per_k_step=26600, k_reduction=4, straight_through=False),
                                     step1_depth=0.0, step2_depth=0.4),
    ("tedlium2", (12, 24, 36, 48)): dict(conf=dict(updates_per_k_step=5734, k_reduction=1, straight_through=False),
                                         step1_depth=0.1, step2_depth=0.3),
    ("tedlium2", (24, 48)): dict(conf=dict(updates_per_k_step=35000, k_reduction=4, straight_through=False),
                                 step1_depth=0.0, step2_depth=0.5),
}
ZERO_OUT = {
    ("librispeech", (16, 32, 48)): dict(conf=dict(steps_per_iter=[27450] * 16,
                                                  zero_out_counts=list(range(2, 33, 2))), step2_depth=0.3),
    ("tedlium2", (16, 32, 48)): dict(conf=dict(steps_per_iter=[42000] + [25200] * 7,
                                               zero_out_counts=list(range(4, 33, 4))), step2_depth=0.3),
    ("tedlium2", (12, 24, 36, 48)): dict(conf=dict(steps_per_iter=[14000] + [5600] * 35,
                                                   zero_out_counts=list(range(1, 37))), step2_depth=0.3),
    ("tedlium2", (24, 48)): dict(conf=dict(steps_per_iter=[63000] + [21000] * 7,
                                           zero_out_counts=list(range(3, 25, 3))), step2_depth=0.3),
}


def encoder_conf(corpus: str, num_blocks: int = 12, **overrides) -> Dict:
    c = CORPORA[corpus]
    conf = dict(
        output_size=c["d"], attention_heads=c["heads"], linear_units=c["ffn"], num_blocks=num_blocks,
        dropout_rate=c["dropout"], positional_dropout_rate=c["dropout"], attention_dropout_rate=c["attention_dropout"],
        input_layer="conv2d", normalize_before=True, macaron_style=True, rel_pos_type="latest",
        pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn", activation_type="swish",
        use_cnn_module=True, cnn_module_kernel=31, unit_order=list(UNIT_ORDER), conv_norm="layer_norm",
    )
    conf.update(overrides)
    return conf


def optimizer_note(corpus: str, selector: bool = False, conformer: bool = True) -> str:
    """The header's account of the optimizer: what follows the released setup, what does not."""
    decayed = []
    if conformer:
        decayed.append("the rel-pos attention biases pos_bias_u / pos_bias_v (their names do not end in 'bias'; "
                       "the released MHSA has none)")
    if selector:
        decayed.append("the selector's scores or gates (the released models' gates are decayed too)")
    also = f": this includes {' and '.join(decayed)}" if decayed else ""
    norms = "LayerNorm weights (the conv module's too)" if conformer else "LayerNorm weights"
    return (
        "Optimizer as in the released DES configs (AdamW, eps 1e-16, decoupled weight decay 1e-3, no gradient "
        "clipping): betas (0.9, 0.999), torch's default since the released optimizer dict names none, held "
        "constant (cycle_momentum false: torch's OneCycleLR would otherwise cycle beta1 0.95 -> 0.85 -> 0.95); "
        f"biases and {norms} are not decayed, every other parameter is, as RETURNN's updater splits them{also}. "
        "Still different: the LR changes every update where the released list changes it once per sub-epoch "
        f"({CORPORA[corpus]['subepoch_updates']} updates); ESPnet skips an update whose gradient norm is not "
        "finite, RETURNN (2023/24) applied every update."
    )


def training_conf(corpus: str, criteria: List[List[str]], peak_lr: float = PEAK_LR) -> Dict:
    c = CORPORA[corpus]
    total = c["total_updates"]
    return {
        "frontend": "default",
        "frontend_conf": {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 80},
        "specaug": "specaug",
        "specaug_conf": {"apply_time_warp": True, "time_warp_window": 5, "time_warp_mode": "bicubic",
                         "apply_freq_mask": True, "freq_mask_width_range": [0, 27], "num_freq_mask": 2,
                         "apply_time_mask": True, "time_mask_width_ratio_range": [0.0, 0.05], "num_time_mask": 10},
        "optim": "adamw",
        "optim_conf": {"lr": peak_lr, **ADAMW_CONF},
        # no decay for biases and norm weights (see ADAMW_CONF)
        "exclude_weight_decay": True,
        "exclude_weight_decay_conf": {"bias_weight_decay": False, "normalization_weight_decay": False},
        # start peak/100, peak after pct_start, back to peak/100 after 2 x pct_start, then down to 1e-8;
        # beta1 stays as configured
        "scheduler": "onecyclelr",
        "scheduler_conf": {"max_lr": peak_lr, "total_steps": total, "pct_start": round(c["pct_start"], 4),
                           "anneal_strategy": "linear", "three_phase": True, "div_factor": 100.0,
                           "final_div_factor": round(peak_lr / 100 / 1.0e-8, 6), "cycle_momentum": False},
        "batch_type": "length",
        "batch_bins": BATCH_BINS,
        "accum_grad": 1,
        "max_epoch": c["epochs"],
        "num_iters_per_epoch": total // c["epochs"],
        "grad_clip": float("inf"),  # the released configs clip nothing
        "best_model_criterion": criteria,
        "keep_nbest_models": 10,
        "num_att_plot": 0,
        "unused_parameters": False,
    }


def supernet(corpus: str, sizes: Tuple[int, ...], selector: str) -> Tuple[str, Dict]:
    released = (SIMPLE_TOPK if selector == "simple_topk" else ZERO_OUT)[(corpus, sizes)]
    schedule = released["conf"]
    if selector == "simple_topk":
        step1 = schedule["updates_per_k_step"] * math.ceil((48 - sizes[0]) / schedule["k_reduction"])
    else:
        step1 = sum(schedule["steps_per_iter"])
    total = CORPORA[corpus]["total_updates"]
    if step1 >= total:
        raise ValueError(f"{corpus} {selector} {sizes}: Step 1 ({step1}) is not shorter than training ({total})")
    criteria = [["valid", f"cer_ctc_{size}", "min"] for size in sizes[:-1]] + [["valid", "cer_ctc", "min"]]
    model_conf = {"ctc_weight": 1.0, "subnet_sizes": list(sizes), "selector": selector,
                  "selector_conf": dict(schedule), "supernet_loss_weight": 1.0, "subnet_loss_weight": 0.3}
    if released.get("step1_depth"):
        model_conf["step1_stochastic_depth"] = released["step1_depth"]
    model_conf["sandwich_stochastic_depth"] = released["step2_depth"]
    conf = {
        **_header(f"Dynamic Encoder Size supernet, {selector}, sizes {list(sizes)}: Step 1 = {step1} updates "
                  f"of {total} (Step 2 = sandwich rule), the released schedule. {DEVIATIONS} "
                  f"{optimizer_note(corpus, selector=True)}"),
        "encoder": "dynamic_conformer",
        "encoder_conf": encoder_conf(corpus),
        "model": "supernet_ctc",
        "model_conf": model_conf,
        **training_conf(corpus, criteria),
    }
    name = f"train_des_{selector}_{'_'.join(map(str, sizes))}.yaml"
    return name, conf


def individual(corpus: str, units: int) -> Tuple[str, Dict]:
    blocks = units // 4
    total = CORPORA[corpus]["total_updates"]
    conf = {
        **_header(f"Individually trained {blocks}-block Conformer-CTC ({units} units), the same {total} updates "
                  f"as the supernets. {DEVIATIONS} {optimizer_note(corpus)}"),
        "encoder": "dynamic_conformer",
        "encoder_conf": encoder_conf(corpus, num_blocks=blocks),
        "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0},
        **training_conf(corpus, [["valid", "cer_ctc", "min"]]),
    }
    return f"train_individual_{units}.yaml", conf


def aux_loss(corpus: str) -> Tuple[str, Dict]:
    conf = {
        **_header("Aux-Loss baseline: a 12-block Conformer with its own CTC heads after blocks 4 and 8 (weight 0.3) "
                  f"and 12 (1.0); its subnets are the first 4 / 8 blocks (early exit). Peak LR 3e-4 as the released "
                  f"LibriSpeech config. {DEVIATIONS} {optimizer_note(corpus)}"),
        "encoder": "dynamic_conformer",
        "encoder_conf": encoder_conf(corpus),
        "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [16, 32, 48], "subnet_loss_weight": 0.3},
        **training_conf(corpus, [["valid", "cer_ctc_16", "min"], ["valid", "cer_ctc_32", "min"],
                                 ["valid", "cer_ctc", "min"]], peak_lr=AUX_LOSS_PEAK_LR),
    }
    return "train_aux_loss_16_32_48.yaml", conf


def prune_on_demand(corpus: str, transformer: bool) -> Tuple[str, Dict]:
    exits = [3, 6, 9]
    overrides = dict(interctc_layer_idx=exits, stochastic_depth_rate=0.2, stochastic_depth_schedule="linear",
                     stochastic_depth_mode="batch")
    # A pruned depth d keeps d blocks: where an exit follows block d, its own checkpoint averages
    # the epochs best by that exit's dev CER (exact for the strategy top, a proxy for the others).
    criteria = [["valid", f"cer_interctc_layer{layer}", "min"] for layer in exits] + [["valid", "cer_ctc", "min"]]
    if transformer:
        overrides.update(macaron_style=False, use_cnn_module=False, pos_enc_layer_type="abs_pos",
                         selfattention_layer_type="selfattn", unit_order=None)
    kind = "Transformer" if transformer else "Conformer"
    conf = {
        **_header(f"{kind}-CTC for layer pruning on demand: InterCTC after blocks 3/6/9 (weight 0.3) and linear "
                  "stochastic depth (block l of 12 skipped with probability 0.2 * l / 12). Each pruned depth 3/6/9 is "
                  "decoded from the average of the epochs best by the dev CER of the exit after that block (asr.sh "
                  "--size_checkpoints true): exactly the encoder that the strategy top keeps, a proxy for the other "
                  "strategies, which keep other blocks; other depths and the whole model use cer_ctc. The LR schedule "
                  f"is that of the released DES configs. {optimizer_note(corpus, conformer=not transformer)}"),
        "encoder": "dynamic_conformer",
        "encoder_conf": {k: v for k, v in encoder_conf(corpus, **overrides).items() if v is not None},
        "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0, "interctc_weight": 0.3},
        **training_conf(corpus, criteria),
    }
    return f"train_prune_on_demand_{kind.lower()}.yaml", conf


DMAO_RHO = {"librispeech": 0.15, "tedlium2": 0.2}
DMAO_EVENT_SHARE = 0.15


def dmao(corpus: str) -> Tuple[str, Dict]:
    total = CORPORA[corpus]["total_updates"]
    event = round(total * DMAO_EVENT_SHARE)
    conf = {
        **_header(f"DMAO on the 12-block Conformer-CTC: groups scored every 1000 updates (first-order Taylor, "
                  f"EMA 0.1), one event after update {event} (15% of {total}) moving rho = {DMAO_RHO[corpus]} of "
                  "the prunable parameters from the least to the most important groups; the dropouts of a resized "
                  "module follow its width. Same size as the uniform baseline train_individual_48.yaml, decoded the "
                  "same way (the 10 best epochs averaged, all after the event). unused_parameters is true for "
                  "multi-GPU training. The LR schedule is that of the released DES configs. "
                  f"{optimizer_note(corpus)} An event puts each new parameter in the parameter group of the one "
                  "it replaces, so the decay split holds after it."),
        "encoder": "dynamic_conformer",
        "encoder_conf": encoder_conf(corpus),
        "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0, "dmao": {"event_updates": [event], "rho": DMAO_RHO[corpus],
                                                   "score_interval": 1000, "method": "taylor",
                                                   "optimizer_state": "gather"}},
        **training_conf(corpus, [["valid", "cer_ctc", "min"]]),
        # on several GPUs the tensors an event replaces stay in the DDP wrapper without gradients
        "unused_parameters": True,
    }
    return "train_dmao_48.yaml", conf


def _header(text: str) -> Dict:
    return {"__comment__": text}


def all_configs() -> Dict[str, Dict[str, Dict]]:
    configs: Dict[str, Dict[str, Dict]] = {}
    for corpus in CORPORA:
        files = dict(supernet(corpus, sizes, selector) for (c, sizes) in SIMPLE_TOPK if c == corpus
                     for selector in ("simple_topk", "iterative_zero_out"))
        for units in (16, 32, 48) if corpus == "librispeech" else (12, 16, 24, 32, 36, 48):
            files.update([individual(corpus, units)])
        files.update([aux_loss(corpus), prune_on_demand(corpus, False), prune_on_demand(corpus, True), dmao(corpus)])
        configs[corpus] = files
    return configs


def render(conf: Dict) -> str:
    body = {k: v for k, v in conf.items() if k != "__comment__"}
    lines = ["# " + line for line in _wrap(conf["__comment__"])]
    lines.append("# Generated by tools/make_paper_configs.py; edit that script, not this file.")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def _wrap(text: str, width: int = 96) -> List[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only verify that the files are up to date")
    args = parser.parse_args()
    stale = []
    for corpus, files in all_configs().items():
        for name, conf in files.items():
            path = OUT / corpus / name
            text = render(conf)
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        sys.exit("out of date (run tools/make_paper_configs.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
