"""The SVCCA analysis of a trained encoder's layers: the work behind ``bin/svcca_analysis``.

Collects the frontend output and every block's output of one subnet on dev utterances,
compares every pair of layers with SVCCA (``espnet_dynenc.analysis.svcca``) and writes
the matrix, its labelled table, each block's input-output similarity and a heatmap.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from espnet_dynenc.analysis.svcca import block_similarity_matrix, collect_block_outputs, layer_labels
from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically
from espnet_dynenc.checkpoint_jobs.dev_data import check_subnet, check_svcca_options, load_dev_batches
from espnet_dynenc.checkpoint_jobs.loading import load_model


@dataclass
class SVCCARequest:
    """What to analyse (``svcca_analysis``'s options)."""

    asr_train_config: str
    asr_model_file: str
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]]
    output_dir: str
    key_file: Optional[str] = None
    max_utterances: Optional[int] = 200
    max_frames: int = 20000
    variance_kept: float = 0.99
    subnet: Optional[int] = None
    batch_size: int = 8
    device: str = "cpu"
    num_workers: int = 0
    seed: int = 0


def matrix_tsv(matrix: np.ndarray, labels: Sequence[str]) -> str:
    lines = ["\t".join(["layer"] + list(labels))]
    for label, row in zip(labels, matrix):
        lines.append("\t".join([label] + [f"{v:.6f}" for v in row]))
    return "\n".join(lines) + "\n"


def redundancy_tsv(matrix: np.ndarray) -> str:
    """Block b (0-based) against its input: the entry just above the diagonal."""
    lines = ["block\tsvcca_input_output"]
    lines += [f"{b}\t{v:.6f}" for b, v in enumerate(np.diag(matrix, 1))]
    return "\n".join(lines) + "\n"


def plot_heatmap(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a cluster node
    import matplotlib.pyplot as plt

    size = max(4.0, 0.45 * len(labels) + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    # Layers of a residual encoder are all fairly similar; a 0..1 scale would paint them
    # one colour, so the scale starts at the lowest value (rounded down to a tenth).
    finite = matrix[np.isfinite(matrix)]
    low = float(np.floor(finite.min() * 10) / 10) if finite.size else 0.0
    image = ax.imshow(matrix, vmin=min(low, 0.9), vmax=1.0, cmap="viridis")
    if len(labels) <= 20:  # beyond that the numbers no longer fit their cells
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="mean canonical correlation")
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def write_outputs(out_dir: Path, matrix: np.ndarray, labels: Sequence[str], title: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    replace_atomically(out_dir / "svcca.npy", lambda tmp: np.save(tmp, matrix))
    write_text_atomically(out_dir / "svcca.tsv", matrix_tsv(matrix, labels))
    write_text_atomically(out_dir / "block_redundancy.tsv", redundancy_tsv(matrix))
    plot_heatmap(matrix, labels, out_dir / "svcca.png", title)


@torch.no_grad()
def analyse(request: SVCCARequest) -> np.ndarray:
    """Collect, compare and write; returns the (N+1, N+1) similarity matrix."""
    check_svcca_options(request.max_frames, request.variance_kept)
    model, train_args = load_model(request.asr_train_config, request.asr_model_file, request.device)
    size = check_subnet(model, request.subnet)
    batches = load_dev_batches(train_args, request.data_path_and_name_and_type, request.key_file,
                               request.batch_size, request.max_utterances, with_text=False,
                               num_workers=request.num_workers)
    hidden = collect_block_outputs(model, batches, size, request.max_frames or None, request.seed)
    logging.info("SVCCA over %d layers, %d frames", len(hidden), hidden[0].shape[1])
    matrix = block_similarity_matrix(hidden, request.variance_kept)
    labels = layer_labels(model.encoder.num_blocks)
    title = f"SVCCA, subnet {size}, {hidden[0].shape[1]} frames"
    write_outputs(Path(request.output_dir), matrix, labels, title)
    return matrix
