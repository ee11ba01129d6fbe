#!/usr/bin/env python3
"""Replay a training config's Step-1 learning rates on Iterative-Zero-Out's gates.

Reads a training YAML (``model_conf.selector: iterative_zero_out``), rebuilds its optimizer
(``adam`` / ``adamw`` with ``optim_conf``) and learning-rate schedule (``onecyclelr``, which
ESPnet builds as ``torch.optim.lr_scheduler.OneCycleLR(optimizer, **scheduler_conf)`` and
steps after every update, or none) on the gates alone, and runs every update of Step 1
with the real selector: its sparsity loss (``extra_loss``), its zero-out (``after_update``)
and a stand-in for the task loss, no model and no data. The stand-in is a fixed linear
pull on the gates, ``-task_pull * F * sum_u p_u sigmoid(g_u) / L`` with ``p_u`` drawn
uniformly from [0, 1) (F: encoder frames per utterance, L: units): the units a real CTC loss
would rather keep. Against the sparsity loss's ``w * F / L`` per gate (``w`` the sparsity
weight, relative to a per-frame CTC), a unit's pull is ``task_pull * p_u / w`` of it.
``--task-noise s`` adds ``s * N(0, 1)`` to every ``p_u`` anew in every update, as batches
disagree.

Per iteration it prints: its updates and the sum of their learning rates, the target
``L - n_i``, the sum of the gates (``sum_u sigmoid(g_u)``) and the sparsity loss
(``loss_selector``) after its last update, the margin between the lowest gate the cut keeps
and the highest it drops (logits), and how many of the units below the cut are among the
``n_i`` the stand-in likes least. With the sparsity term binding, the sum is near its target
and the loss near 0 at every iteration's end.

``--gate-scale``, ``--init-gate``, ``--zero-out-value`` and ``--sparsity-weight`` override
the config's ``selector_conf`` (see ``espnet_dynenc/selection/iterative_zero_out.py``)::

    python tools/simulate_zero_out.py egs2/mini_synth/asr1/conf/comparison/train_des_zero_out.yaml
    python tools/simulate_zero_out.py egs2/mini_synth/asr1/conf/comparison/train_des_zero_out.yaml \\
        --gate-scale 50 --init-gate 4
"""
import argparse
import inspect
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from espnet_dynenc.encoder.dynamic_conformer import DynamicConformerEncoder  # noqa: E402
from espnet_dynenc.encoder.layout import default_unit_order  # noqa: E402
from espnet_dynenc.selection import IterativeZeroOut  # noqa: E402

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@dataclass
class IterationEnd:
    """The gates after the last update of one iteration (before its zero-out)."""

    iteration: int
    updates: int
    lr_sum: float
    target: int
    gate_sum: float
    loss_selector: float
    cut_margin: float
    agreement: int
    dropped: int


def num_units(config: Dict) -> int:
    """Units of the config's ``dynamic_conformer`` encoder: blocks x modules per block."""
    if config.get("encoder", "dynamic_conformer") != "dynamic_conformer":
        raise ValueError(f"encoder '{config['encoder']}' is not dynamic_conformer")
    defaults = {name: p.default for name, p in inspect.signature(DynamicConformerEncoder).parameters.items()}
    conf = {**defaults, **(config.get("encoder_conf") or {})}
    order = conf["unit_order"] or default_unit_order(conf["macaron_style"], conf["use_cnn_module"])
    return int(conf["num_blocks"]) * len(order)


def build_selector(config: Dict, overrides: Dict) -> IterativeZeroOut:
    model_conf = config.get("model_conf") or {}
    if model_conf.get("selector") != "iterative_zero_out":
        raise ValueError(f"model_conf.selector is {model_conf.get('selector')!r}, not iterative_zero_out")
    conf = {**(model_conf.get("selector_conf") or {}), **overrides}
    return IterativeZeroOut(num_units(config), **conf)


def build_optimizer(config: Dict, params) -> torch.optim.Optimizer:
    name = str(config.get("optim", "adadelta")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optim '{name}' is not simulated (choose from {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](params, **(config.get("optim_conf") or {}))


def build_scheduler(config: Dict, optimizer: torch.optim.Optimizer):
    name = config.get("scheduler")
    if name is None or str(name).lower() == "none":
        return None
    if str(name).lower() != "onecyclelr":
        raise ValueError(f"scheduler '{name}' is not simulated (only onecyclelr or none)")
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, **(config.get("scheduler_conf") or {}))


def simulate(selector: IterativeZeroOut, optimizer: torch.optim.Optimizer, scheduler,
             frames_per_utterance: float, preferences: torch.Tensor, task_pull: float,
             task_noise: float = 0.0, generator: Optional[torch.Generator] = None) -> List[IterationEnd]:
    """Run Step 1 update by update; one record per iteration."""
    units = selector.num_units
    least_liked = torch.argsort(preferences)  # stable order of the stand-in's preference
    records, lr_sum, start = [], 0.0, 0
    for update in range(selector.step1_updates):
        lr_sum += optimizer.param_groups[0]["lr"]
        optimizer.zero_grad()
        pull = preferences
        if task_noise:
            pull = preferences + task_noise * torch.randn(units, generator=generator)
        task = -task_pull * frames_per_utterance * (pull * selector.small_subnet_gates(update)).sum() / units
        (task + selector.extra_loss(update, frames_per_utterance)).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if update + 1 in selector.boundaries:
            i = selector.iteration(update)
            n = selector.zero_out_counts[i]
            logits = selector.logits().detach()
            ordered = torch.sort(logits).values
            below = set(torch.argsort(logits, stable=True)[:n].tolist())
            with torch.no_grad():
                loss = float(selector.extra_loss(update, frames_per_utterance))
            records.append(IterationEnd(
                iteration=i, updates=update + 1 - start, lr_sum=lr_sum, target=units - n,
                gate_sum=float(torch.sigmoid(logits).sum()), loss_selector=loss,
                cut_margin=float(ordered[n] - ordered[n - 1]),
                agreement=len(below & set(least_liked[:n].tolist())), dropped=n))
            lr_sum, start = 0.0, update + 1
        selector.after_update(update + 1)
    return records


def run(config: Dict, overrides: Dict, frames_per_utterance: float, task_pull: float, seed: int,
        task_noise: float = 0.0) -> List[IterationEnd]:
    selector = build_selector(config, overrides)
    optimizer = build_optimizer(config, selector.parameters())
    scheduler = build_scheduler(config, optimizer)
    generator = torch.Generator().manual_seed(seed)
    preferences = torch.rand(selector.num_units, generator=generator)
    return simulate(selector, optimizer, scheduler, frames_per_utterance, preferences, task_pull,
                    task_noise, generator)


def report(records: List[IterationEnd], selector_conf: Dict) -> str:
    lines = [f"selector_conf overrides: {selector_conf or 'none'}",
             f"Step 1: {sum(r.updates for r in records)} updates, sum of learning rates "
             f"{sum(r.lr_sum for r in records):.3f}",
             f"{'iter':>4} {'updates':>7} {'lr_sum':>7} {'target':>6} {'sum_gates':>9} {'loss_selector':>13} "
             f"{'cut_margin':>10} {'least_liked_below_cut':>21}"]
    for r in records:
        lines.append(f"{r.iteration:>4} {r.updates:>7} {r.lr_sum:>7.3f} {r.target:>6} {r.gate_sum:>9.3f} "
                     f"{r.loss_selector:>13.3f} {r.cut_margin:>10.3f} {f'{r.agreement}/{r.dropped}':>21}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("config", type=Path, help="training YAML with model_conf.selector: iterative_zero_out")
    parser.add_argument("--frames-per-utterance", type=float, default=75.0,
                        help="encoder frames per utterance, F (default 75: ~3 s at 40 ms frames)")
    parser.add_argument("--task-pull", type=float, default=1.0,
                        help="strength of the stand-in task pull (default 1; 0: the sparsity loss alone)")
    parser.add_argument("--task-noise", type=float, default=0.0,
                        help="std of the noise added to every unit's preference in every update (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stand-in's preferences and noise")
    for option, kind in (("gate-scale", float), ("init-gate", float), ("zero-out-value", float),
                         ("sparsity-weight", float)):
        parser.add_argument(f"--{option}", type=kind, default=None,
                            help=f"override selector_conf.{option.replace('-', '_')}")
    args = parser.parse_args(argv)
    if not math.isfinite(args.frames_per_utterance) or args.frames_per_utterance <= 0:
        parser.error(f"--frames-per-utterance must be > 0, got {args.frames_per_utterance}")
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    overrides = {key: getattr(args, key) for key in ("gate_scale", "init_gate", "zero_out_value", "sparsity_weight")
                 if getattr(args, key) is not None}
    try:
        records = run(config, overrides, args.frames_per_utterance, args.task_pull, args.seed, args.task_noise)
    except ValueError as error:
        parser.error(str(error))
    print(report(records, overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
