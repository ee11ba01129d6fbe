"""SVCCA: how similar two layers' representations are (Raghu et al., NeurIPS 2017).

"SVCCA: Singular Vector Canonical Correlation Analysis for Deep Learning Dynamics and
Interpretability" compares two sets of activations recorded on the same inputs, each a
(neurons x frames) matrix:

1. mean-centre every neuron over the frames;
2. SVD, keeping the top singular directions that explain ``variance_kept`` (99%) of the
   variance, which drops the noise directions;
3. CCA between the two reduced sets;
4. the similarity is the mean of the canonical correlations.

Lee et al. (Interspeech 2021) use it to find encoder blocks whose output says little
more than their input: such blocks can be removed first.

Numerics: the reduced set of step 2 spans the same frame-space subspace as the kept
right singular vectors, which are orthonormal, so CCA needs no covariance inverse: the
canonical correlations are the singular values of ``V1 @ V2.T`` (cosines of the principal
angles between the two subspaces). A generic CCA (:func:`canonical_correlations`) gets
orthonormal bases from a column-pivoted QR the same way and drops dependent directions,
so rank-deficient inputs are handled. Everything runs in float64.
"""
import logging
from typing import Iterable, List, Optional, Sequence

import numpy as np
import scipy.linalg
import torch

DEFAULT_VARIANCE_KEPT = 0.99

# Cumulative variance fractions are compared with this slack, so variance_kept=1.0
# keeps every direction despite rounding in the cumulative sum.
_FRACTION_SLACK = 1e-12


def _as_activations(acts, name: str) -> np.ndarray:
    """A float64 (neurons, frames) copy, mean-centred over the frames."""
    x = np.array(acts.detach().cpu().numpy() if isinstance(acts, torch.Tensor) else acts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: activations must be (neurons, frames), got shape {x.shape}")
    if x.shape[1] < 2:
        raise ValueError(f"{name}: needs at least 2 frames, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: activations contain nan or inf")
    return x - x.mean(axis=1, keepdims=True)


def _check_variance_kept(variance_kept: float) -> None:
    if not 0.0 < variance_kept <= 1.0:
        raise ValueError(f"variance_kept: must be in (0, 1], got {variance_kept}")


def _tolerance(largest: float, shape) -> float:
    # The usual numerical-rank cut-off: below it a direction is rounding noise.
    return largest * max(shape) * np.finfo(np.float64).eps


def principal_directions(acts, variance_kept: float = DEFAULT_VARIANCE_KEPT, name: str = "acts") -> np.ndarray:
    """Orthonormal (r, frames) basis of the top singular directions of the centred activations.

    r is the fewest directions whose squared singular values reach ``variance_kept`` of
    the total, never more than the numerical rank. A representation without variance
    gives r = 0.
    """
    _check_variance_kept(variance_kept)
    x = _as_activations(acts, name)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros((0, x.shape[1]))
    rank = int(np.sum(s > _tolerance(s[0], x.shape)))
    energy = s[:rank] ** 2
    fractions = np.cumsum(energy) / energy.sum()
    kept = int(np.searchsorted(fractions, variance_kept - _FRACTION_SLACK)) + 1
    return vt[: min(kept, rank)]


def _orthonormal_row_basis(x: np.ndarray) -> np.ndarray:
    """Orthonormal basis (rows) of the row space of ``x``, via column-pivoted QR of ``x.T``."""
    q, r, _ = scipy.linalg.qr(x.T, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    if diagonal.size == 0 or diagonal[0] == 0.0:
        return np.zeros((0, x.shape[1]))
    # Pivoting sorts |R_ii| in decreasing order, so the independent columns come first.
    rank = int(np.sum(diagonal > _tolerance(diagonal[0], x.shape)))
    return q[:, :rank].T


def _correlations_of_bases(basis1: np.ndarray, basis2: np.ndarray) -> np.ndarray:
    """Canonical correlations of two subspaces given orthonormal row bases, descending."""
    if basis1.shape[0] == 0 or basis2.shape[0] == 0:
        return np.zeros(0)
    frames = basis1.shape[1]
    if basis1.shape[0] + basis2.shape[0] > frames:
        # Two subspaces whose dimensions add up to more than the frames must intersect:
        # some correlations are 1 whatever the data. More frames are needed.
        logging.warning("CCA of %d and %d directions over only %d frames: correlations are inflated",
                        basis1.shape[0], basis2.shape[0], frames)
    correlations = np.linalg.svd(basis1 @ basis2.T, compute_uv=False)
    return np.clip(correlations, 0.0, 1.0)


def canonical_correlations(x, y) -> np.ndarray:
    """CCA of two (dims, frames) sets over the same frames: correlations, descending.

    Directions that are linear combinations of others (rank deficiency) are dropped, so
    there are min(rank x, rank y) correlations.
    """
    x, y = _as_activations(x, "x"), _as_activations(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same frames, got {x.shape[1]} and {y.shape[1]}")
    return _correlations_of_bases(_orthonormal_row_basis(x), _orthonormal_row_basis(y))


def _mean_correlation(basis1: np.ndarray, basis2: np.ndarray) -> float:
    correlations = _correlations_of_bases(basis1, basis2)
    # A representation without variance has no directions: no similarity to speak of.
    return float(correlations.mean()) if correlations.size else float("nan")


def svcca(acts1, acts2, variance_kept: float = DEFAULT_VARIANCE_KEPT) -> float:
    """SVCCA similarity of two (neurons, frames) activation sets: mean canonical correlation.

    1.0 for identical representations (or one an invertible linear map of the other, up
    to the variance truncation), near 0 for unrelated ones; nan when either has no variance.
    """
    basis1 = principal_directions(acts1, variance_kept, "acts1")
    basis2 = principal_directions(acts2, variance_kept, "acts2")
    if basis1.shape[1] != basis2.shape[1]:
        raise ValueError(f"acts1 and acts2 must have the same frames, got {basis1.shape[1]} and {basis2.shape[1]}")
    return _mean_correlation(basis1, basis2)


def _bases(hidden_states: Sequence, variance_kept: float) -> List[np.ndarray]:
    if len(hidden_states) == 0:
        raise ValueError("hidden_states: no layers given")
    bases = [principal_directions(h, variance_kept, f"hidden_states[{i}]") for i, h in enumerate(hidden_states)]
    frames = {b.shape[1] for b in bases}
    if len(frames) != 1:
        raise ValueError(f"hidden_states: layers must share the same frames, got frame counts {sorted(frames)}")
    return bases


def block_similarity_matrix(hidden_states: Sequence, variance_kept: float = DEFAULT_VARIANCE_KEPT) -> np.ndarray:
    """Symmetric (n, n) SVCCA matrix of n layers, each (neurons, frames) on the same frames.

    Each layer's SVD is computed once, then every pair costs one small SVD.
    """
    bases = _bases(hidden_states, variance_kept)
    n = len(bases)
    matrix = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            matrix[i, j] = matrix[j, i] = _mean_correlation(bases[i], bases[j])
    return matrix


def block_redundancy(hidden_states: Sequence, variance_kept: float = DEFAULT_VARIANCE_KEPT) -> np.ndarray:
    """SVCCA of each block's input and output: entry b compares layers b and b + 1.

    ``hidden_states`` is [block-0 input (frontend output), block 0 output, ...], as
    :func:`collect_block_outputs` returns; a high value marks a block that changes little.
    """
    bases = _bases(hidden_states, variance_kept)
    return np.array([_mean_correlation(bases[b], bases[b + 1]) for b in range(len(bases) - 1)])


def layer_labels(num_blocks: int) -> List[str]:
    """Names of the layers :func:`collect_block_outputs` returns; blocks are 0-based as ``--skip_blocks``."""
    return ["frontend"] + [f"block{b}" for b in range(num_blocks)]


@torch.no_grad()
def collect_block_outputs(model, batches: Iterable[Sequence[torch.Tensor]], size: Optional[int] = None,
                          max_frames: Optional[int] = None, seed: int = 0) -> List[np.ndarray]:
    """Activations of a ``supernet_ctc`` encoder on dev data, valid frames only.

    Args:
        model: a ``supernet_ctc`` model; put in eval mode.
        batches: tuples whose first two items are speech and speech lengths.
        size: the subnet whose blocks run (None: the supernet).
        max_frames: keep this many frames, drawn at random (the same frames for every
            layer, as CCA needs), to bound memory and time; None keeps all.
        seed: seed of that draw.

    Returns:
        [frontend output (the input of block 0), block 0 output, ..., block N-1 output],
        each a float32 (d_model, frames) array. Block outputs are taken before the
        encoder's final norm. (With ``interctc_use_conditioning`` the encoder does not add
        the conditioning when it returns all hidden states.)
    """
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames: must be >= 2, got {max_frames}")
    model.eval()
    device = next(model.parameters()).device
    mask = model.mask_for(size)
    per_layer: List[List[torch.Tensor]] = []
    for batch in batches:
        speech, lengths = batch[0].to(device), batch[1].to(device)
        embedded = model.embed(speech, lengths)
        (_, block_outputs), _, _ = model.encoder.forward_blocks(embedded, subnet=mask, return_all_hs=True)
        valid = embedded.masks[:, 0, :]
        layers = [embedded.xs] + list(block_outputs)
        if not per_layer:
            per_layer = [[] for _ in layers]
        for store, layer in zip(per_layer, layers):
            store.append(layer[valid].float().cpu())
    if not per_layer:
        raise ValueError("batches: the data set is empty")
    stacked = [torch.cat(store).numpy() for store in per_layer]
    frames = stacked[0].shape[0]
    if max_frames is not None and frames > max_frames:
        chosen = np.sort(np.random.default_rng(seed).choice(frames, size=max_frames, replace=False))
        stacked = [s[chosen] for s in stacked]
    return [np.ascontiguousarray(s.T) for s in stacked]
