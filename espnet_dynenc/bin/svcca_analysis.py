"""SVCCA similarity between the layers of a trained ``supernet_ctc`` encoder.

SVCCA (Raghu et al., NeurIPS 2017) compares the activations of two layers on the same
frames; Lee et al. (Interspeech 2021) read it to see which blocks of an encoder trained
for layer pruning on demand change their input least. Layers are the frontend output
(the input of block 0) and the output of every block, on the valid frames of the first
``--max_utterances`` utterances. Blocks are numbered from 0, as ``--skip_blocks``.

Writes into ``--output_dir``::

    svcca.npy              (N+1, N+1) matrix over [frontend, block0, ..., block{N-1}]
    svcca.tsv              the same with row and column labels
    block_redundancy.tsv   block, svcca(input, output): high = the block changes little
    svcca.png              heatmap of the matrix

Each file is written under a temporary name and renamed when complete.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc before ESPnet reads the config

from espnet2.utils.types import str2triple_str, str_or_none

from espnet_dynenc.analysis.svcca import block_similarity_matrix, collect_block_outputs, layer_labels
from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically
from espnet_dynenc.pruning.dev_data import check_subnet, check_svcca_options, load_dev_batches, load_model


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asr_train_config", required=True, help="config.yaml of the trained model")
    parser.add_argument("--asr_model_file", required=True, help="model parameters (.pth)")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help="e.g. dump/raw/dev/wav.scp,speech,sound (repeatable; speech is needed)")
    parser.add_argument("--key_file", type=str_or_none, default=None, help="use only these utterances")
    parser.add_argument("--max_utterances", type=int, default=200, help="utterances to collect activations on")
    parser.add_argument("--max_frames", type=int, default=20000,
                        help="frames kept (a random subset, the same for every layer); 0 keeps all")
    parser.add_argument("--variance_kept", type=float, default=0.99,
                        help="fraction of variance the SVD step keeps (Raghu et al.: 0.99)")
    parser.add_argument("--subnet", type=int, default=None, help="subnet size to analyse (default: the supernet)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the frame subset")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


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
def analyse(args: argparse.Namespace) -> np.ndarray:
    check_svcca_options(args.max_frames, args.variance_kept)
    device = "cuda" if args.ngpu > 0 else "cpu"
    model, train_args = load_model(args.asr_train_config, args.asr_model_file, device)
    size = check_subnet(model, args.subnet)
    batches = load_dev_batches(train_args, args.data_path_and_name_and_type, args.key_file, args.batch_size,
                               args.max_utterances, with_text=False, num_workers=args.num_workers)
    hidden = collect_block_outputs(model, batches, size, args.max_frames or None, args.seed)
    logging.info("SVCCA over %d layers, %d frames", len(hidden), hidden[0].shape[1])
    matrix = block_similarity_matrix(hidden, args.variance_kept)
    labels = layer_labels(model.encoder.num_blocks)
    title = f"SVCCA, subnet {size}, {hidden[0].shape[1]} frames"
    write_outputs(Path(args.output_dir), matrix, labels, title)
    return matrix


def main(cmd: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        analyse(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"svcca_analysis: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
