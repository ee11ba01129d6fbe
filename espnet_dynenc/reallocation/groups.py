"""Groups: the unit in which DMAO scores, drops and duplicates parameters.

DMAO (Xu et al., "DMAO: Dynamic Model Architecture Optimization", Interspeech 2025,
arXiv 2506.13180) splits every module of a Conformer block into equal groups and
moves parameters between modules group by group:

* feed-forward: ``group_size`` hidden units (default ``d_model``, so 4 groups when
  ``d_ff = 4 d``): rows of ``w_1`` and its bias, the matching columns of ``w_2``. The
  convolutional feed-forward modules (``positionwise_layer_type: conv1d`` and
  ``conv1d-linear``) have the same layout: a hidden channel is an output channel of
  ``w_1`` (all its kernel taps) and an input channel of ``w_2`` (all its taps, or one
  column of a linear ``w_2``); ReLU and dropout act per channel, so regrouping keeps
  what every kept channel computes;
* convolution: ``group_size`` channels (default ``d_model // 4``): the value rows *and*
  the gate rows of those channels in ``pointwise_conv1`` (and its bias), the depthwise
  kernels and biases, the norm's weight and bias (and a batch norm's running
  statistics), and the matching input columns of ``pointwise_conv2``. A batch norm
  treats each channel alone, so regrouping keeps what every kept channel computes; a
  layer norm (``conv_norm: layer_norm``) normalises over all channels of a frame, so
  there a regrouped module is only exact for an identity regroup;
* self-attention: ``group_size`` heads (default 1): the head's rows of
  ``linear_q/k/v`` (and biases) and ``linear_pos``, its rows of ``pos_bias_u/v`` and
  the matching input columns of ``linear_out``.

Group ``g`` occupies the same contiguous span in every tensor of a module (for
``pointwise_conv1`` the same span in the value half and in the gate half), so one
index list describes a rebuild of all tensors at once. A module that loses every group
is removed; the encoder then treats its unit as an exact identity.

Everything here is mechanism: which groups to keep or copy is decided in
:mod:`espnet_dynenc.reallocation.reallocate`.
"""
import copy
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from espnet_dynenc.encoder.block import DynamicConformerBlock
from espnet_dynenc.parts.convolution import ConvolutionModule
from espnet_dynenc.parts.feed_forward import ConvFeedForward, FeedForward
from espnet_dynenc.parts.self_attention import MultiHeadSelfAttention

GROUP_KINDS = ("ffn", "mhsa", "conv")


@dataclass(frozen=True)
class GroupedTensor:
    """Where the groups lie in one tensor of a module.

    Attributes:
        name: the tensor's state-dict name inside the module.
        dim: the axis along which the groups are laid out.
        unit: elements along ``dim`` per unit of module width (``d_k`` for a head's
            rows, 1 for a hidden unit or a channel).
        halves: 2 for ``pointwise_conv1``, whose value and gate halves both hold
            every group; 1 otherwise.
        output: the tensor is the input side of the module's output projection; its
            columns are what ``split_output`` rescales.
    """

    name: str
    dim: int
    unit: int
    halves: int = 1
    output: bool = False


@dataclass
class ModuleChange:
    """One module replaced by :func:`rebuild_block` / :func:`apply_architecture`.

    The old module is kept so that a trainer can carry optimizer state over with
    :func:`gather_state` (same ``index_list`` and ``group_size``).
    """

    block: Optional[int]
    module_name: str
    kind: str
    old_module: torch.nn.Module
    new_module: Optional[torch.nn.Module]
    index_list: List[int]
    group_size: int
    old_width: int
    new_width: int


def module_kind(module: torch.nn.Module) -> str:
    """``ffn``, ``mhsa`` or ``conv`` for the three resizable parts."""
    if isinstance(module, (FeedForward, ConvFeedForward)):
        return "ffn"
    if isinstance(module, MultiHeadSelfAttention):
        return "mhsa"
    if isinstance(module, ConvolutionModule):
        return "conv"
    raise ValueError(f"module: {type(module).__name__} has no DMAO groups (expected FeedForward, "
                     "ConvFeedForward, MultiHeadSelfAttention or ConvolutionModule)")


def module_width(module: torch.nn.Module) -> int:
    """Hidden units, heads or channels of a module."""
    module_kind(module)
    return int(module.width)


def model_dim(module: torch.nn.Module) -> int:
    """``d_model`` of a module (its input dimension)."""
    kind = module_kind(module)
    if kind == "ffn":
        return module.d_model
    if kind == "mhsa":
        return module.linear_q.in_features
    return module.pointwise_conv1.in_channels


def default_group_size(kind: str, d_model: int) -> int:
    """DMAO's group sizes: ``d_model`` hidden units, one head, ``d_model / 4`` channels."""
    if kind not in GROUP_KINDS:
        raise ValueError(f"kind: unknown module kind '{kind}' (choose from {GROUP_KINDS})")
    if kind == "ffn":
        return d_model
    if kind == "mhsa":
        return 1
    if d_model < 4:
        raise ValueError(f"d_model={d_model}: the default conv group size d_model // 4 would be 0")
    return d_model // 4


def resolve_group_size(module: torch.nn.Module, group_size: Optional[int] = None) -> int:
    """The group size for ``module`` (its default when ``None``), checked to divide its width."""
    kind = module_kind(module)
    size = default_group_size(kind, model_dim(module)) if group_size is None else group_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    width = module_width(module)
    if width % size != 0:
        raise ValueError(f"group_size={size} does not divide the {kind} module's width {width}")
    return size


def group_sizes_for(group_sizes: Optional[Mapping[str, int]], kind: str) -> Optional[int]:
    """Look up a kind's group size in a ``{kind: size}`` mapping (None = default)."""
    if group_sizes is None:
        return None
    for key in group_sizes:
        if key not in GROUP_KINDS:
            raise ValueError(f"group_sizes: unknown module kind '{key}' (choose from {GROUP_KINDS})")
    return group_sizes.get(kind)


def group_layout(module: torch.nn.Module) -> List[GroupedTensor]:
    """The grouped tensors of a module, in the order of its state dict.

    Tensors that are not listed (output-projection biases, ``num_batches_tracked``)
    are shared by all groups and are copied unchanged by a rebuild.
    """
    kind = module_kind(module)
    if kind == "ffn":
        layout = [
            GroupedTensor("w_1.weight", 0, 1),
            GroupedTensor("w_1.bias", 0, 1),
            GroupedTensor("w_2.weight", 1, 1, output=True),
        ]
    elif kind == "mhsa":
        d_k = module.d_k
        layout = [GroupedTensor(f"linear_{x}.{p}", 0, d_k) for x in "qkv" for p in ("weight", "bias")]
        layout += [
            GroupedTensor("linear_out.weight", 1, d_k, output=True),
            # Relative positions: linear_pos is reshaped to (heads, d_k) exactly like
            # linear_q, so its rows belong to heads as well.
            GroupedTensor("linear_pos.weight", 0, d_k),
            GroupedTensor("pos_bias_u", 0, 1),
            GroupedTensor("pos_bias_v", 0, 1),
        ]
    else:
        layout = [
            # GLU: rows [0:c] are values, rows [c:2c] the gates of the same channels.
            GroupedTensor("pointwise_conv1.weight", 0, 1, halves=2),
            GroupedTensor("pointwise_conv1.bias", 0, 1, halves=2),
            GroupedTensor("depthwise_conv.weight", 0, 1),
            GroupedTensor("depthwise_conv.bias", 0, 1),
            GroupedTensor("norm.weight", 0, 1),
            GroupedTensor("norm.bias", 0, 1),
            GroupedTensor("norm.running_mean", 0, 1),
            GroupedTensor("norm.running_var", 0, 1),
            GroupedTensor("pointwise_conv2.weight", 1, 1, output=True),
        ]
    present = module.state_dict(keep_vars=True)
    return [entry for entry in layout if entry.name in present]


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


def _checked_index_list(index_list: Sequence[int], n: int) -> List[int]:
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
    indices = _checked_index_list(index_list, width // size)
    layout = {e.name: e for e in group_layout(module)}
    known = module.state_dict(keep_vars=True)
    counts = Counter(indices)
    out = {}
    for name, tensor in state.items():
        if name not in known:
            raise ValueError(f"state: '{name}' is not a tensor of the {module_kind(module)} module")
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


def _empty_module(module: torch.nn.Module, width: int, dropout_rate: Optional[float]) -> torch.nn.Module:
    """A module like ``module`` but of ``width``, on the meta device (no init, no RNG use)."""
    kind = module_kind(module)
    d_model = model_dim(module)
    with torch.device("meta"):
        if kind == "ffn":
            p = module.dropout.p if dropout_rate is None else dropout_rate
            if isinstance(module, ConvFeedForward):
                return ConvFeedForward(d_model, width, module.kernel_size, p, module.linear_output)
            return FeedForward(d_model, width, p, copy.deepcopy(module.activation))
        if kind == "mhsa":
            p = module.dropout.p if dropout_rate is None else dropout_rate
            return MultiHeadSelfAttention(d_model, width, module.d_k, p, module.position_scheme, module.zero_triu)
        new = ConvolutionModule(
            d_model, width, module.depthwise_conv.kernel_size[0], copy.deepcopy(module.activation),
            bias=module.pointwise_conv1.bias is not None, norm=module.norm_kind,
        )
    # Norm hyper-parameters are not constructor arguments; carry them over.
    new.norm.eps = module.norm.eps
    if module.norm_kind == "batch_norm":
        new.norm.momentum = module.norm.momentum
    return new


def regroup(
    module: torch.nn.Module,
    index_list: Sequence[int],
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
    indices = _checked_index_list(index_list, module_width(module) // size)
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
    new = _empty_module(module, len(indices) * size, dropout_rate)
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


# ---------------------------------------------------------------------- blocks / encoder
def _plan_block(
    block: DynamicConformerBlock,
    new_widths: Optional[Mapping[str, int]],
    index_lists: Mapping[str, Sequence[int]],
    group_sizes: Optional[Mapping[str, int]],
    split_output: bool,
    noise_std: float,
    generator: Optional[torch.Generator],
    dropout_rates: Mapping[str, float],
    block_index: Optional[int],
) -> List[ModuleChange]:
    """Build (but do not install) the replacement modules of one block; validates everything."""
    where = "" if block_index is None else f"block {block_index}: "
    specs = {spec.module_name: spec for spec in block.units}
    for name in index_lists:
        if name not in specs:
            raise ValueError(f"index_lists: {where}unknown module '{name}' (this block has {list(specs)})")
    if new_widths is not None:
        for name in new_widths:
            if name not in index_lists:
                raise ValueError(f"new_widths: {where}'{name}' has a width but no index list")
    changes = []
    for name, index_list in index_lists.items():
        spec = specs[name]
        old = getattr(block, name)
        listed = index_list.tolist() if isinstance(index_list, torch.Tensor) else index_list
        if isinstance(listed, (str, bytes)) or not isinstance(listed, Sequence):
            raise ValueError(f"index_lists: {where}'{name}' must be a sequence of group indices, got {listed!r}")
        listed = list(listed)
        if old is None:
            if listed:
                raise ValueError(
                    f"index_lists: {where}'{name}' has width 0 and cannot be grown from nothing "
                    f"(got index list {listed})"
                )
            if new_widths is not None and new_widths.get(name, 0) != 0:
                raise ValueError(f"new_widths: {where}'{name}' has width 0 and cannot be grown to {new_widths[name]}")
            continue
        size = resolve_group_size(old, group_sizes_for(group_sizes, spec.kind))
        try:
            listed = _checked_index_list(listed, module_width(old) // size)
        except ValueError as err:
            raise ValueError(f"{where}'{name}': {err}") from None
        new_width = len(listed) * size
        if new_widths is not None and name in new_widths and int(new_widths[name]) != new_width:
            raise ValueError(
                f"new_widths: {where}'{name}' = {new_widths[name]} disagrees with its index list "
                f"({len(listed)} groups of {size} = {new_width})"
            )
        new = regroup(old, listed, size, split_output, noise_std, generator, dropout_rates.get(name))
        changes.append(ModuleChange(block_index, name, spec.kind, old, new, listed, size, module_width(old), new_width))
    return changes


def _install(block: DynamicConformerBlock, changes: Sequence[ModuleChange]) -> None:
    specs = {spec.module_name: spec for spec in block.units}
    for change in changes:
        setattr(block, change.module_name, change.new_module)
        if change.new_module is None:
            # The unit is now an identity: its pre-norm has nothing to feed.
            setattr(block, specs[change.module_name].norm_name, None)


def rebuild_block(
    block: DynamicConformerBlock,
    new_widths: Optional[Mapping[str, int]],
    index_lists: Mapping[str, Sequence[int]],
    group_sizes: Optional[Mapping[str, int]] = None,
    split_output: bool = False,
    noise_std: float = 0.0,
    generator: Optional[torch.Generator] = None,
    dropout_rates: Optional[Mapping[str, float]] = None,
) -> List[ModuleChange]:
    """Regroup modules of one block in place (DMAO's rebuild step).

    Args:
        block: the block to change.
        new_widths: module name -> new width, checked against the index lists
            (``None``: taken from them).
        index_lists: module name -> index list (see :func:`regroup`); modules not named
            stay as they are. An empty list removes the module and its pre-norm.
        group_sizes: ``{kind: group size}`` overrides of DMAO's group sizes.
        dropout_rates: module name -> internal dropout of the rebuilt module.

    Raises ValueError (and changes nothing) for a bad index, a width that disagrees
    with its index list, or a width-0 module given groups: there is nothing to copy.
    The encoder's ``block_widths`` record is not touched; to change a block of an
    encoder use :func:`apply_architecture`, which keeps the record in step.
    """
    changes = _plan_block(block, new_widths, index_lists, group_sizes, split_output, noise_std, generator,
                          dropout_rates or {}, None)
    _install(block, changes)
    return changes


def apply_architecture(
    encoder: torch.nn.Module,
    index_lists: Sequence[Optional[Mapping[str, Sequence[int]]]],
    group_sizes: Optional[Mapping[str, int]] = None,
    split_output: bool = False,
    noise_std: float = 0.0,
    generator: Optional[torch.Generator] = None,
    dropout_rates: Optional[Mapping[Tuple[int, str], float]] = None,
) -> List[ModuleChange]:
    """Regroup modules of a ``DynamicConformerEncoder`` and update its ``block_widths``.

    ``index_lists[b]`` maps module names of block ``b`` to index lists (``None`` or a
    missing name: unchanged). Every block is validated and built before any is
    installed, so a bad entry leaves the encoder untouched. Returns the changes, whose
    old modules let a trainer carry optimizer state over (:func:`gather_state`).
    """
    blocks = encoder.encoders
    if len(index_lists) != len(blocks):
        raise ValueError(f"index_lists has {len(index_lists)} entries, expected num_blocks={len(blocks)}")
    rates = dropout_rates or {}
    planned = []
    for b, (block, lists) in enumerate(zip(blocks, index_lists)):
        block_rates = {name: p for (rb, name), p in rates.items() if rb == b}
        planned.append(_plan_block(block, None, lists or {}, group_sizes, split_output, noise_std, generator,
                                   block_rates, b))
    for b, (block, changes) in enumerate(zip(blocks, planned)):
        _install(block, changes)
        for change in changes:
            encoder.block_widths[b][change.module_name] = change.new_width
    return [change for changes in planned for change in changes]


def identity_index_lists(
    encoder: torch.nn.Module, group_sizes: Optional[Mapping[str, int]] = None
) -> List[Dict[str, List[int]]]:
    """Index lists that rebuild every present module of the encoder as it is."""
    lists = []
    for block in encoder.encoders:
        row = {}
        for spec in block.units:
            module = getattr(block, spec.module_name)
            if module is not None:
                row[spec.module_name] = list(range(num_groups(module, group_sizes_for(group_sizes, spec.kind))))
        lists.append(row)
    return lists
