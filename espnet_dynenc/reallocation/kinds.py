"""The three kinds of resizable unit, in one table: how DMAO reads, resizes and sizes each.

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

Everything that differs between the kinds lives in :data:`KINDS`, one
:class:`UnitKind` each (as the encoder keeps its subsampling frontends in one table),
so the code that regroups, scores and plans never asks which kind it holds.
"""
import copy
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

from espnet_dynenc.parts.convolution import ConvolutionModule
from espnet_dynenc.parts.feed_forward import ConvFeedForward, FeedForward
from espnet_dynenc.parts.self_attention import MultiHeadSelfAttention


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


@dataclass(frozen=True)
class UnitKind:
    """What DMAO needs to know about one kind of resizable unit.

    Attributes:
        name: the kind's key (``ffn``, ``mhsa``, ``conv``), as in ``group_sizes``.
        classes: the module classes of this kind.
        model_dim: reads a module's ``d_model`` (its input dimension).
        default_group_size: DMAO's group size for a ``d_model``.
        layout: every tensor a module of this kind may group, in state-dict order
            (:func:`group_layout` keeps those the module has).
        designated: the tensors DMAO's importance score is measured on (its
            designated matrix and, where present, that matrix's bias).
        build: a module like the given one at a new width and internal dropout
            (``None``: unchanged); called on the meta device, so it draws no numbers.
    """

    name: str
    classes: Tuple[type, ...]
    model_dim: Callable[[torch.nn.Module], int]
    default_group_size: Callable[[int], int]
    layout: Callable[[torch.nn.Module], List[GroupedTensor]]
    designated: Tuple[str, ...]
    build: Callable[[torch.nn.Module, int, Optional[float]], torch.nn.Module]


def _dropout(module: torch.nn.Module, dropout_rate: Optional[float]) -> float:
    return module.dropout.p if dropout_rate is None else dropout_rate


# ---------------------------------------------------------------------- feed-forward
def _ffn_layout(module: torch.nn.Module) -> List[GroupedTensor]:
    return [
        GroupedTensor("w_1.weight", 0, 1),
        GroupedTensor("w_1.bias", 0, 1),
        GroupedTensor("w_2.weight", 1, 1, output=True),
    ]


def _ffn_build(module: torch.nn.Module, width: int, dropout_rate: Optional[float]) -> torch.nn.Module:
    p = _dropout(module, dropout_rate)
    if isinstance(module, ConvFeedForward):
        return ConvFeedForward(module.d_model, width, module.kernel_size, p, module.linear_output)
    return FeedForward(module.d_model, width, p, copy.deepcopy(module.activation))


# ---------------------------------------------------------------------- self-attention
def _mhsa_layout(module: torch.nn.Module) -> List[GroupedTensor]:
    d_k = module.d_k
    layout = [GroupedTensor(f"linear_{x}.{p}", 0, d_k) for x in "qkv" for p in ("weight", "bias")]
    return layout + [
        GroupedTensor("linear_out.weight", 1, d_k, output=True),
        # Relative positions: linear_pos is reshaped to (heads, d_k) exactly like
        # linear_q, so its rows belong to heads as well.
        GroupedTensor("linear_pos.weight", 0, d_k),
        GroupedTensor("pos_bias_u", 0, 1),
        GroupedTensor("pos_bias_v", 0, 1),
    ]


def _mhsa_build(module: torch.nn.Module, width: int, dropout_rate: Optional[float]) -> torch.nn.Module:
    return MultiHeadSelfAttention(module.linear_q.in_features, width, module.d_k, _dropout(module, dropout_rate),
                                  module.position_scheme, module.zero_triu)


# ---------------------------------------------------------------------- convolution
def _conv_default_group_size(d_model: int) -> int:
    if d_model < 4:
        raise ValueError(f"d_model={d_model}: the default conv group size d_model // 4 would be 0")
    return d_model // 4


def _conv_layout(module: torch.nn.Module) -> List[GroupedTensor]:
    return [
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


def _conv_build(module: torch.nn.Module, width: int, dropout_rate: Optional[float]) -> torch.nn.Module:
    # The convolution module has no internal dropout: ``dropout_rate`` does not apply.
    new = ConvolutionModule(
        module.pointwise_conv1.in_channels, width, module.depthwise_conv.kernel_size[0],
        copy.deepcopy(module.activation), bias=module.pointwise_conv1.bias is not None, norm=module.norm_kind,
    )
    # Norm hyper-parameters are not constructor arguments; carry them over.
    new.norm.eps = module.norm.eps
    if module.norm_kind == "batch_norm":
        new.norm.momentum = module.norm.momentum
    return new


KINDS: Dict[str, UnitKind] = {
    kind.name: kind
    for kind in (
        UnitKind("ffn", (FeedForward, ConvFeedForward), lambda m: m.d_model, lambda d: d, _ffn_layout,
                 ("w_1.weight", "w_1.bias"), _ffn_build),
        UnitKind("mhsa", (MultiHeadSelfAttention,), lambda m: m.linear_q.in_features, lambda d: 1, _mhsa_layout,
                 ("linear_out.weight",), _mhsa_build),
        UnitKind("conv", (ConvolutionModule,), lambda m: m.pointwise_conv1.in_channels, _conv_default_group_size,
                 _conv_layout, ("pointwise_conv1.weight", "pointwise_conv1.bias"), _conv_build),
    )
}
GROUP_KINDS = tuple(KINDS)


def unit_kind(module: torch.nn.Module) -> UnitKind:
    """The table entry of a module; a ValueError names the classes that have groups."""
    for kind in KINDS.values():
        if isinstance(module, kind.classes):
            return kind
    names = [cls.__name__ for kind in KINDS.values() for cls in kind.classes]
    raise ValueError(f"module: {type(module).__name__} has no DMAO groups (expected {', '.join(names[:-1])} "
                     f"or {names[-1]})")


def module_width(module: torch.nn.Module) -> int:
    """Hidden units, heads or channels of a module."""
    unit_kind(module)
    return int(module.width)


def default_group_size(kind: str, d_model: int) -> int:
    """DMAO's group sizes: ``d_model`` hidden units, one head, ``d_model / 4`` channels."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown module kind '{kind}' (choose from {GROUP_KINDS})")
    return KINDS[kind].default_group_size(d_model)


def resolve_group_size(module: torch.nn.Module, group_size: Optional[int] = None) -> int:
    """The group size for ``module`` (its default when ``None``), checked to divide its width."""
    kind = unit_kind(module)
    size = default_group_size(kind.name, kind.model_dim(module)) if group_size is None else group_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")
    width = module_width(module)
    if width % size != 0:
        raise ValueError(f"group_size={size} does not divide the {kind.name} module's width {width}")
    return size


def group_sizes_for(group_sizes: Optional[Mapping[str, int]], kind: str) -> Optional[int]:
    """Look up a kind's group size in a ``{kind: size}`` mapping (None = default)."""
    if group_sizes is None:
        return None
    for key in group_sizes:
        if key not in KINDS:
            raise ValueError(f"group_sizes: unknown module kind '{key}' (choose from {GROUP_KINDS})")
    return group_sizes.get(kind)


def group_layout(module: torch.nn.Module) -> List[GroupedTensor]:
    """The grouped tensors of a module, in the order of its state dict.

    Tensors that are not listed (output-projection biases, ``num_batches_tracked``)
    are shared by all groups and are copied unchanged by a rebuild.
    """
    layout = unit_kind(module).layout(module)
    present = module.state_dict(keep_vars=True)
    return [entry for entry in layout if entry.name in present]


def designated_tensors(module: torch.nn.Module) -> List[GroupedTensor]:
    """The grouped tensors a module's score is measured on (biases only where present)."""
    names = unit_kind(module).designated
    return [entry for entry in group_layout(module) if entry.name in names]


def build_empty(module: torch.nn.Module, width: int, dropout_rate: Optional[float]) -> torch.nn.Module:
    """A module like ``module`` but of ``width``, on the meta device (no init, no RNG use)."""
    with torch.device("meta"):
        return unit_kind(module).build(module, width, dropout_rate)
