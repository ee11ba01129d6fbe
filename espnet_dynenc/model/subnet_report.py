"""What each subnet keeps, what it costs, and how the selection scores evolved.

Writes into an experiment directory:

* ``subnets.yaml``: per size, the kept units by block and module, the mask, parameters
  and FLOPs per second of audio;
* ``subnets.png``: which units each size keeps (the paper's Figure 2);
* ``selection_scores.png``: the score of every unit over Step 1, from
  ``selection_scores.tsv`` (one line per logged update: the update, then L scores).

DES training writes it as it goes (``des_state``: the scores at every logged update, the
rest at the end of each epoch), so it sits beside the model it reports on.
"""
import os
from pathlib import Path
from typing import Dict, List

import yaml

from espnet_dynenc.analysis.complexity import subnet_complexity
from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically
from espnet_dynenc.model.subnets import mask_to_string

KIND_COLOURS = {"ffn": "#4C72B0", "mhsa": "#DD8452", "conv": "#55A868"}
SCORES_FILE = "selection_scores.tsv"


def subnet_table(model) -> Dict[int, Dict]:
    """Per size: kept modules per block, mask string, parameters, FLOPs per second."""
    encoder = model.encoder
    table = {}
    for size in model.subnet_sizes:
        mask = model.mask_for(size)
        kept = {}
        for b in range(encoder.num_blocks):
            names = [spec.module_name for p, spec in enumerate(encoder.unit_specs)
                     if mask[b * encoder.units_per_block + p]]
            kept[f"block{b}"] = names
        cost = subnet_complexity(model, size)
        table[size] = {
            "mask": mask_to_string(mask, encoder.units_per_block),
            "kept_units": kept,
            "kept_by_kind": {kind: sum(1 for u, k in enumerate(encoder.unit_kinds()) if k == kind and mask[u])
                             for kind in KIND_COLOURS},
            "parameters": cost.parameters,
            "flops_per_second": cost.flops_per_second,
        }
    return table


def write_subnet_report(model, out_dir: os.PathLike) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = subnet_table(model)
    report = {"num_updates": int(model.num_updates), "num_units": model.encoder.num_units,
              "unit_order": [spec.kind for spec in model.encoder.unit_specs], "subnets": table}
    write_text_atomically(out / "subnets.yaml", yaml.safe_dump(report, sort_keys=False))
    plot_kept_units(model, out / "subnets.png")
    if (out / SCORES_FILE).exists():
        plot_score_history(out / SCORES_FILE, model.encoder, out / "selection_scores.png")


def append_score_history(out_dir: os.PathLike, update: int, scores: List[float]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / SCORES_FILE, "a", encoding="utf-8") as f:
        f.write("\t".join([str(update)] + [f"{s:.6g}" for s in scores]) + "\n")


def plot_kept_units(model, path: Path) -> None:
    plt = _pyplot()
    encoder = model.encoder
    kinds = encoder.unit_kinds()
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * encoder.num_units), 0.6 * len(model.subnet_sizes) + 1.5))
    for row, size in enumerate(model.subnet_sizes):
        for u, keep in enumerate(model.mask_for(size)):
            colour = KIND_COLOURS[kinds[u]] if keep else "#EEEEEE"
            ax.add_patch(plt.Rectangle((u, row), 0.9, 0.8, color=colour))
    for b in range(1, encoder.num_blocks):
        ax.axvline(b * encoder.units_per_block - 0.05, color="black", linewidth=0.5)
    ax.set_xlim(0, encoder.num_units)
    ax.set_ylim(0, len(model.subnet_sizes))
    ax.set_yticks([r + 0.4 for r in range(len(model.subnet_sizes))], [str(s) for s in model.subnet_sizes])
    ax.set_xticks([b * encoder.units_per_block + encoder.units_per_block / 2 for b in range(encoder.num_blocks)],
                  [str(b) for b in range(encoder.num_blocks)])
    ax.set_xlabel("block")
    ax.set_ylabel("subnet size (units)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLOURS.values()]
    ax.legend(handles, list(KIND_COLOURS), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("units kept by each subnet")
    fig.tight_layout()
    _save(fig, path)


def plot_score_history(scores_file: Path, encoder, path: Path) -> None:
    rows = [line.split("\t") for line in scores_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    updates = [int(r[0]) for r in rows]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    kinds = encoder.unit_kinds()
    for u in range(len(rows[0]) - 1):
        ax.plot(updates, [float(r[u + 1]) for r in rows], color=KIND_COLOURS[kinds[u]], linewidth=0.8, alpha=0.8)
    ax.set_xlabel("update")
    ax.set_ylabel("score")
    ax.set_title("selection scores during Step 1 (colour = module kind)")
    handles = [plt.Line2D([0], [0], color=c) for c in KIND_COLOURS.values()]
    ax.legend(handles, list(KIND_COLOURS))
    fig.tight_layout()
    _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    _pyplot().close(fig)
