"""Rebuild blocks and encoders from index lists: DMAO's rebuild step, validated as a whole.

:func:`~espnet_dynenc.reallocation.groups.regroup` rebuilds one module; here every
module named by the index lists of a block (or of every block of an encoder) is
checked and built first and only then installed, so a bad entry changes nothing. The
returned :class:`ModuleChange` list keeps the old modules, from which a trainer
carries optimizer state over.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from espnet_dynenc.encoder.block import DynamicConformerBlock
from espnet_dynenc.reallocation.groups import checked_index_list, num_groups, regroup
from espnet_dynenc.reallocation.kinds import group_sizes_for, module_width, resolve_group_size


@dataclass
class ModuleChange:
    """One module replaced by :func:`rebuild_block` / :func:`apply_architecture`.

    The old module is kept so that a trainer can carry optimizer state over with
    :func:`~espnet_dynenc.reallocation.groups.gather_state` (same ``index_list`` and
    ``group_size``).
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


@dataclass(frozen=True)
class RegroupOptions:
    """How every module of one rebuild is regrouped (see :func:`regroup`).

    The settings are the same for every block of a rebuild, so they travel as one
    value from the public entry points to the per-block planner.

    Attributes:
        group_sizes: ``{kind: group size}`` overrides of DMAO's group sizes.
        split_output: divide the output columns of a group copied ``m`` times by ``m``.
        noise_std: Gaussian noise on every repeated copy of a group.
        generator: CPU generator for that noise.
    """

    group_sizes: Optional[Mapping[str, int]] = None
    split_output: bool = False
    noise_std: float = 0.0
    generator: Optional[torch.Generator] = None


@dataclass(frozen=True)
class _BlockPlan:
    """What one block is asked to become, and how to name it in errors."""

    index_lists: Mapping[str, Sequence[int]]
    new_widths: Optional[Mapping[str, int]] = None
    dropout_rates: Mapping[str, float] = field(default_factory=dict)
    block_index: Optional[int] = None

    @property
    def where(self) -> str:
        return "" if self.block_index is None else f"block {self.block_index}: "


def _plan_block(block: DynamicConformerBlock, plan: _BlockPlan, options: RegroupOptions) -> List[ModuleChange]:
    """Build (but do not install) the replacement modules of one block; validates everything."""
    where = plan.where
    specs = {spec.module_name: spec for spec in block.units}
    for name in plan.index_lists:
        if name not in specs:
            raise ValueError(f"index_lists: {where}unknown module '{name}' (this block has {list(specs)})")
    new_widths = plan.new_widths
    if new_widths is not None:
        for name in new_widths:
            if name not in plan.index_lists:
                raise ValueError(f"new_widths: {where}'{name}' has a width but no index list")
    changes = []
    for name, index_list in plan.index_lists.items():
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
        size = resolve_group_size(old, group_sizes_for(options.group_sizes, spec.kind))
        try:
            listed = checked_index_list(listed, module_width(old) // size)
        except ValueError as err:
            raise ValueError(f"{where}'{name}': {err}") from None
        new_width = len(listed) * size
        if new_widths is not None and name in new_widths and int(new_widths[name]) != new_width:
            raise ValueError(
                f"new_widths: {where}'{name}' = {new_widths[name]} disagrees with its index list "
                f"({len(listed)} groups of {size} = {new_width})"
            )
        new = regroup(old, listed, group_size=size, split_output=options.split_output, noise_std=options.noise_std,
                      generator=options.generator, dropout_rate=plan.dropout_rates.get(name))
        changes.append(ModuleChange(plan.block_index, name, spec.kind, old, new, listed, size, module_width(old),
                                    new_width))
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
    *,
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
        group_sizes, split_output, noise_std, generator: see :class:`RegroupOptions`.
        dropout_rates: module name -> internal dropout of the rebuilt module.

    Raises ValueError (and changes nothing) for a bad index, a width that disagrees
    with its index list, or a width-0 module given groups: there is nothing to copy.
    The encoder's ``block_widths`` record is not touched; to change a block of an
    encoder use :func:`apply_architecture`, which keeps the record in step.
    """
    options = RegroupOptions(group_sizes=group_sizes, split_output=split_output, noise_std=noise_std,
                             generator=generator)
    plan = _BlockPlan(index_lists, new_widths=new_widths, dropout_rates=dropout_rates or {})
    changes = _plan_block(block, plan, options)
    _install(block, changes)
    return changes


def apply_architecture(
    encoder: torch.nn.Module,
    index_lists: Sequence[Optional[Mapping[str, Sequence[int]]]],
    *,
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
    old modules let a trainer carry optimizer state over
    (:func:`~espnet_dynenc.reallocation.groups.gather_state`). ``group_sizes``,
    ``split_output``, ``noise_std``, ``generator``: see :class:`RegroupOptions`;
    ``dropout_rates``: (block, module name) -> internal dropout of the rebuilt module.
    """
    blocks = encoder.encoders
    if len(index_lists) != len(blocks):
        raise ValueError(f"index_lists has {len(index_lists)} entries, expected num_blocks={len(blocks)}")
    options = RegroupOptions(group_sizes=group_sizes, split_output=split_output, noise_std=noise_std,
                             generator=generator)
    rates = dropout_rates or {}
    planned = []
    for b, (block, lists) in enumerate(zip(blocks, index_lists)):
        block_rates = {name: p for (rb, name), p in rates.items() if rb == b}
        planned.append(_plan_block(block, _BlockPlan(lists or {}, dropout_rates=block_rates, block_index=b), options))
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
