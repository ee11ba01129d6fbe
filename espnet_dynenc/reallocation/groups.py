"""Groups: the unit in which DMAO scores, drops and duplicates parameters.

DMAO (Xu et al., "DMAO: Dynamic Model Architecture Optimization", Interspeech 2025,
arXiv 2506.13180) splits every module of a Conformer block into equal groups (hidden
units, heads or conv channels; :mod:`espnet_dynenc.reallocation.kinds` says which
tensors each kind groups) and moves parameters between modules group by group.

Group ``g`` occupies the same contiguous span in every tensor of a module (for
``pointwise_conv1`` the same span in the value half and in the gate half), so one
index list describes a rebuild of all tensors at once. A module that loses every group
is removed; the encoder then treats its unit as an exact identity.

This module regroups one module; :mod:`espnet_dynenc.reallocation.rebuild` applies
index lists to blocks and encoders. Everything here is mechanism: which groups to keep
or copy is decided in :mod:`espnet_dynenc.reallocation.reallocate`.
"""
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from espnet_dynenc.reallocation.kinds import (
    GroupedTensor,
    build_empty,
    group_layout,
    module_width,
    resolve_group_size,
    unit_kind,
)


def num_groups(module: Optional[torch.nn.Module], group_size: Optional[int] = None) -> int:
    """Number of groups of a module; 0 for an absent (width-0) module."""
    if module is None:
        return 0
    return module_width(module) // resolve_group_size(module, group_size)


def _group_span(entry: GroupedTensor, width: int, group_size: int, group: int, half: int) -> slice:
    per_group = group_size * entry.unit
    start = half * width * entry.unit + group * per_group
    return slice(start, start + per_group)


def group_index_slices(
    module: torch.nn.Module, group: int, group_size: Optional[int] = None
) -> Dict[str, Tuple[int, List[slice]]]:
    """Where group ``group`` lies in each grouped tensor of ``module``.

    Returns ``{tensor name: (dim, [slice, ...])}``; the list has one slice, or two for
    ``pointwise_conv1`` (value rows, then gate rows).
    """
    size = resolve_group_size(module, group_size)
    n = module_width(module) // size
    _check_index("group", group, n)
    width = module_width(module)
    return {
        entry.name: (entry.dim, [_group_span(entry, width, size, group, h) for h in range(entry.halves)])
        for entry in group_layout(module)
    }


def group_parameter_cost(module: torch.nn.Module, group_size: Optional[int] = None) -> int:
    """Trainable parameters one group holds (running statistics are buffers, not counted).

    This is DMAO's cost of a group: it is what dropping a group frees and what copying
    one adds, whatever the module kind.
    """
    size = resolve_group_size(module, group_size)
    n = module_width(module) // size
    params = dict(module.named_parameters())
    return sum(params[e.name].numel() // n for e in group_layout(module) if e.name in params)


def _check_index(option: str, value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{option}: group indices must be ints, got {value!r}")
    if not 0 <= value < n:
        raise ValueError(f"{option}: group index {value} is out of range (the module has {n} groups)")
    return value


def checked_index_list(index_list: Sequence[int], n: int) -> List[int]:
    """``index_list`` as a list of ints, each checked to name one of ``n`` groups."""
    if isinstance(index_list, torch.Tensor):
        index_list = index_list.tolist()
    if isinstance(index_list, (str, bytes)) or not isinstance(index_list, Sequence):
        raise ValueError(f"index_list must be a sequence of group indices, got {index_list!r}")
    return [_check_index("index_list", int(i) if isinstance(i, torch.Tensor) else i, n) for i in index_list]


def _gather_positions(entry: GroupedTensor, width: int, group_size: int, index_list: Sequence[int]) -> torch.Tensor:
    positions = []
    for half in range(entry.halves):
        for g in index_list:
            span = _group_span(entry, width, group_size, g, half)
            positions.extend(range(span.start, span.stop))
    return torch.tensor(positions, dtype=torch.long)


def gather_state(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    index_list: Sequence[int],
    group_size: Optional[int] = None,
    split_output: bool = False,
) -> Dict[str, torch.Tensor]:
    """Apply a regrouping to tensors shaped like ``module``'s state.

    ``state`` maps tensor names of ``module`` (any subset: its parameters, or per-
    parameter optimizer moments such as Adam's ``exp_avg``) to tensors of the same
    shape. The result holds fresh tensors for the module of ``len(index_list)`` groups
    whose group ``j`` is old group ``index_list[j]``; ungrouped tensors are cloned.

    With ``split_output``, every copy of a group that occurs ``m`` times in
    ``index_list`` has its output-projection columns divided by ``m``, so the copies
    together contribute what the single group did (the module's function is unchanged).
    """
    size = resolve_group_size(module, group_size)
    width = module_width(module)
    indices = checked_index_list(index_list, width // size)
    layout = {e.name: e for e in group_layout(module)}
    known = module.state_dict(keep_vars=True)
    counts = Counter(indices)
    out = {}
    for name, tensor in state.items():
        if name not in known:
            raise ValueError(f"state: '{name}' is not a tensor of the {unit_kind(module).name} module")
        if tuple(tensor.shape) != tuple(known[name].shape):
            raise ValueError(
                f"state: '{name}' has shape {tuple(tensor.shape)}, the module's has {tuple(known[name].shape)}"
            )
        entry = layout.get(name)
        if entry is None:
            out[name] = tensor.detach().clone()
            continue
        positions = _gather_positions(entry, width, size, indices).to(tensor.device)
        gathered = tensor.detach().index_select(entry.dim, positions)
        if split_output and entry.output and any(m > 1 for m in counts.values()):
            factors = torch.tensor(
                [1.0 / counts[g] for g in indices for _ in range(size * entry.unit)],
                dtype=gathered.dtype, device=gathered.device,
            )
            shape = [1] * gathered.dim()
            shape[entry.dim] = -1
            gathered = gathered * factors.view(shape)
        out[name] = gathered
    return out


def regroup(
    module: torch.nn.Module,
    index_list: Sequence[int],
    *,
    group_size: Optional[int] = None,
    split_output: bool = False,
    noise_std: float = 0.0,
    generator: Optional[torch.Generator] = None,
    dropout_rate: Optional[float] = None,
) -> Optional[torch.nn.Module]:
    """Build the module whose group ``j`` is a copy of ``module``'s group ``index_list[j]``.

    Indices may repeat (DMAO's grow step duplicates a group) and appear in any order;
    a permutation gives a module computing the same function. An empty list returns
    ``None``: the module is removed and its unit becomes the encoder's identity.

    Args:
        module: a ``FeedForward``, ``ConvFeedForward``, ``MultiHeadSelfAttention`` or
            ``ConvolutionModule``.
        index_list: old group index of every new group.
        group_size: hidden units / heads / channels per group (default: DMAO's).
        split_output: divide the output-projection columns of each copy of a group that
            occurs ``m`` times by ``m`` (function unchanged). DMAO itself copies as is.
        noise_std: std of Gaussian noise added to the trainable tensors of every
            repeated occurrence of a group (the first occurrence stays exact), so
            copies can diverge.
        generator: CPU generator for that noise (reproducible events).
        dropout_rate: the new module's internal dropout (default: unchanged).

    The new module has the old one's device, dtypes, ``requires_grad`` flags and
    train/eval mode; it shares no storage with the old module.
    """
    size = resolve_group_size(module, group_size)
    indices = checked_index_list(index_list, module_width(module) // size)
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if dropout_rate is not None and not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
    if not indices:
        return None
    old_state = module.state_dict(keep_vars=True)
    state = gather_state(module, old_state, indices, size, split_output)
    if noise_std > 0:
        _add_copy_noise(module, state, indices, size, noise_std, generator)
    new = build_empty(module, len(indices) * size, dropout_rate)
    # assign=True adopts the gathered tensors (device and dtype included) instead of
    # copying into the meta placeholders.
    new.load_state_dict(state, strict=True, assign=True)
    for name, param in new.named_parameters():
        param.requires_grad_(old_state[name].requires_grad)
    new.train(module.training)
    return new


def _add_copy_noise(
    module: torch.nn.Module,
    state: Dict[str, torch.Tensor],
    indices: Sequence[int],
    size: int,
    noise_std: float,
    generator: Optional[torch.Generator],
) -> None:
    params = dict(module.named_parameters())
    new_width = len(indices) * size
    seen = set()
    for j, g in enumerate(indices):
        if g not in seen:
            seen.add(g)
            continue
        for entry in group_layout(module):
            if entry.name not in params:  # running statistics are not perturbed
                continue
            tensor = state[entry.name]
            for half in range(entry.halves):
                span = _group_span(entry, new_width, size, j, half)
                target = tensor.narrow(entry.dim, span.start, span.stop - span.start)
                noise = torch.randn(target.shape, generator=generator) * noise_std
                target.add_(noise.to(device=target.device, dtype=target.dtype))
