"""One DMAO reallocation event: drop the least important groups, copy the most important.

Xu et al., "DMAO", Interspeech 2025 (arXiv 2506.13180), Sec. 2: at a fixed parameter
budget, a share ``rho`` of the prunable parameters moves from the groups that score
lowest to copies of the groups that score highest:

    B = (total_params - fixed_params) * rho
    drop lowest-scoring groups until removed cost > B
    duplicate highest-scoring groups until added cost > B and added cost >= removed cost

The cost of a group is its parameter count, so feed-forward groups, heads and conv
channels trade against each other. Depth and ``d_model`` never change.
"""
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from espnet_dynenc.reallocation.groups import group_parameter_cost, num_groups
from espnet_dynenc.reallocation.kinds import group_sizes_for, resolve_group_size
from espnet_dynenc.reallocation.rebuild import ModuleChange, apply_architecture

ScoreKey = Tuple[int, str]


@dataclass
class ReallocationSummary:
    """What an event did, in parameters and groups (for logs and the analysis plot).

    ``dropped`` and ``grown`` list ``(block, module name, group)``; a grown entry names
    the source group that was copied. ``removed_params`` includes the bias and pre-norm
    of modules that lost every group, so ``param_change`` is the exact change of the
    encoder's parameter count.
    """

    rho: float
    budget: float
    prunable_params: int
    removed_params: int
    added_params: int
    dropped: List[Tuple[int, str, int]] = field(default_factory=list)
    grown: List[Tuple[int, str, int]] = field(default_factory=list)
    widths_before: List[Dict[str, int]] = field(default_factory=list)
    widths_after: List[Dict[str, int]] = field(default_factory=list)

    @property
    def param_change(self) -> int:
        return self.added_params - self.removed_params

    def as_dict(self) -> Dict:
        """Plain types only (YAML/JSON friendly)."""
        out = asdict(self)
        out["dropped"] = [list(x) for x in self.dropped]
        out["grown"] = [list(x) for x in self.grown]
        out["param_change"] = self.param_change
        return out


@dataclass(frozen=True)
class _Group:
    block: int
    position: int
    module_name: str
    group: int
    score: float
    cost: int


def _check_rho(rho: float) -> None:
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0.0 < rho < 1.0:
        raise ValueError(f"rho must be in (0, 1), got {rho!r}")


def _module_scores(scores: Mapping[ScoreKey, object], key: ScoreKey, n: int) -> List[float]:
    if key not in scores:
        raise ValueError(f"scores: no score for block {key[0]} '{key[1]}' (has the tracker been updated?)")
    values = torch.as_tensor(scores[key]).detach().float().cpu().flatten().tolist()
    if len(values) != n:
        raise ValueError(f"scores: block {key[0]} '{key[1]}' has {len(values)} scores but {n} groups")
    return values


def plan_reallocation(
    encoder: torch.nn.Module,
    scores: Mapping[ScoreKey, object],
    rho: float,
    group_sizes: Optional[Mapping[str, int]] = None,
) -> Tuple[List[Dict[str, List[int]]], ReallocationSummary]:
    """Decide one event without changing the encoder.

    Args:
        encoder: a ``DynamicConformerEncoder``.
        scores: ``(block, module name) -> per-group scores`` for every present module
            (``ImportanceTracker.scores``).
        rho: share of the prunable parameters to move, in (0, 1).
        group_sizes: ``{kind: group size}`` overrides of DMAO's group sizes.

    Returns the index lists per block (module name -> old group of every new group: the
    kept groups in their old order, then the copies) and a summary. Ties in score are
    broken by position (block, unit, group), so a plan is deterministic.
    """
    _check_rho(rho)
    groups: List[_Group] = []
    groups_of: Dict[ScoreKey, int] = {}
    fixed_of: Dict[ScoreKey, int] = {}
    for b, block in enumerate(encoder.encoders):
        for position, spec in enumerate(block.units):
            module = getattr(block, spec.module_name)
            if module is None:
                continue
            key = (b, spec.module_name)
            size = resolve_group_size(module, group_sizes_for(group_sizes, spec.kind))
            n = num_groups(module, size)
            cost = group_parameter_cost(module, size)
            for g, score in enumerate(_module_scores(scores, key, n)):
                groups.append(_Group(b, position, spec.module_name, g, score, cost))
            groups_of[key] = n
            # What emptying the module frees besides its groups: output bias, pre-norm.
            norm = getattr(block, spec.norm_name)
            module_params = sum(p.numel() for p in module.parameters())
            norm_params = sum(p.numel() for p in norm.parameters()) if norm is not None else 0
            fixed_of[key] = module_params - n * cost + norm_params
    prunable = sum(g.cost for g in groups)
    budget = prunable * float(rho)

    removed = 0
    dropped = set()
    remaining = dict(groups_of)
    for grp in sorted(groups, key=lambda g: (g.score, g.block, g.position, g.group)):
        if removed > budget:
            break
        key = (grp.block, grp.module_name)
        dropped.add((grp.block, grp.module_name, grp.group))
        removed += grp.cost
        remaining[key] -= 1
        if remaining[key] == 0:
            removed += fixed_of[key]
    survivors = [g for g in groups if (g.block, g.module_name, g.group) not in dropped]
    if not survivors:
        raise ValueError(f"rho={rho} drops every group of the encoder; nothing is left to grow")

    added = 0
    copies: Dict[ScoreKey, List[int]] = {key: [] for key in groups_of}
    grown = []
    ranked = sorted(survivors, key=lambda g: (-g.score, g.block, g.position, g.group))
    step = 0
    # Cycle through the survivors: with a large rho one pass may not reach the budget,
    # and a group copied twice simply occurs three times.
    while not (added > budget and added >= removed):
        grp = ranked[step % len(ranked)]
        step += 1
        copies[(grp.block, grp.module_name)].append(grp.group)
        grown.append((grp.block, grp.module_name, grp.group))
        added += grp.cost

    index_lists: List[Dict[str, List[int]]] = [{} for _ in encoder.encoders]
    for (b, name), n in groups_of.items():
        kept = [g for g in range(n) if (b, name, g) not in dropped]
        index_lists[b][name] = kept + copies[(b, name)]
    widths_before = [dict(row) for row in encoder.block_widths]
    widths_after = [dict(row) for row in encoder.block_widths]
    for b, block in enumerate(encoder.encoders):
        for spec in block.units:
            if spec.module_name in index_lists[b]:
                module = getattr(block, spec.module_name)
                size = resolve_group_size(module, group_sizes_for(group_sizes, spec.kind))
                widths_after[b][spec.module_name] = len(index_lists[b][spec.module_name]) * size
    summary = ReallocationSummary(
        rho=float(rho), budget=budget, prunable_params=prunable, removed_params=removed, added_params=added,
        dropped=sorted(dropped), grown=grown, widths_before=widths_before, widths_after=widths_after,
    )
    return index_lists, summary


def rescale_dropout(p: float, groups: int, default_groups: int) -> float:
    """DMAO's dropout for a resized module: ``p * groups / default_groups``.

    A module that grew regularises more, one that shrank less, as if its dropout
    belonged to its parameters rather than to its position.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 0:
        raise ValueError(f"groups must be an int >= 0, got {groups!r}")
    if isinstance(default_groups, bool) or not isinstance(default_groups, int) or default_groups <= 0:
        raise ValueError(f"default_groups must be an int > 0, got {default_groups!r}")
    rate = p * groups / default_groups
    if rate >= 1.0:
        raise ValueError(f"dropout {p} rescaled to {groups} groups (default {default_groups}) gives {rate} >= 1")
    return rate


@dataclass(frozen=True)
class DropoutReference:
    """The dropouts of one module kind in the uniform encoder, which DMAO rescales.

    Attributes:
        internal: the module's own dropout (FFN hidden units, attention weights); None
            for the convolution module, which has none.
        output: the dropout on the unit's output before the residual sum.
        groups: the module's groups in the uniform encoder.
    """

    internal: Optional[float]
    output: float
    groups: int

    def as_dict(self) -> Dict[str, object]:
        return {"internal": self.internal, "output": self.output, "groups": self.groups}

    @classmethod
    def from_state(cls, value) -> "DropoutReference":
        """From :meth:`as_dict`, or the older ``[internal, groups]`` pair (no output rescaling)."""
        if isinstance(value, Mapping):
            internal = value["internal"]
            return cls(None if internal is None else float(internal),
                       None if value["output"] is None else float(value["output"]), int(value["groups"]))
        return cls(float(value[0]), None, int(value[1]))


def dropout_reference_from(
    encoder: torch.nn.Module, group_sizes: Optional[Mapping[str, int]] = None
) -> Dict[str, DropoutReference]:
    """``{kind: DropoutReference}`` of the uniform encoder, taken before the first event.

    As the authors' DMAO code: a feed-forward module's hidden and output dropouts, an
    attention module's weight and output dropouts and a convolution module's output
    dropout follow the module's width. The encoder must still be uniform per kind.
    """
    reference: Dict[str, DropoutReference] = {}
    for b, block in enumerate(encoder.encoders):
        for spec in block.units:
            module = getattr(block, spec.module_name)
            if module is None:
                continue
            internal = float(module.dropout.p) if spec.kind in ("ffn", "mhsa") else None
            output = float(block.unit_dropout.get(spec.module_name, block.dropout.p))
            entry = DropoutReference(internal, output,
                                     num_groups(module, group_sizes_for(group_sizes, spec.kind)))
            if reference.setdefault(spec.kind, entry) != entry:
                raise ValueError(
                    f"dropout_reference_from: block {b} '{spec.module_name}' has dropouts and groups {entry}, other "
                    f"{spec.kind} modules {reference[spec.kind]}; take the reference before the first event"
                )
    return reference


def rescaled_dropouts(
    encoder: torch.nn.Module,
    groups: Mapping[Tuple[int, str], int],
    reference: Optional[Mapping[str, DropoutReference]],
) -> Tuple[Dict[Tuple[int, str], float], Dict[Tuple[int, str], float]]:
    """The internal and output dropouts of modules resized to ``groups[(block, name)]``
    groups (modules emptied to 0 groups are left out); empty without a reference."""
    internal: Dict[Tuple[int, str], float] = {}
    output: Dict[Tuple[int, str], float] = {}
    if not reference:
        return internal, output
    for (b, name), count in groups.items():
        kind = next(spec.kind for spec in encoder.encoders[b].units if spec.module_name == name)
        ref = reference.get(kind)
        if ref is None or count == 0:
            continue
        if ref.internal is not None:
            internal[(b, name)] = rescale_dropout(ref.internal, count, ref.groups)
        if ref.output is not None:
            output[(b, name)] = rescale_dropout(ref.output, count, ref.groups)
    return internal, output


def set_output_dropouts(encoder: torch.nn.Module, rates: Mapping[Tuple[int, str], float]) -> None:
    """Give resized units their output dropout (see :class:`DropoutReference`)."""
    for (b, name), rate in rates.items():
        encoder.encoders[b].unit_dropout[name] = rate


def reallocate(
    encoder: torch.nn.Module,
    scores: Mapping[ScoreKey, object],
    rho: float,
    group_sizes: Optional[Mapping[str, int]] = None,
    split_output: bool = False,
    noise_std: float = 0.0,
    generator: Optional[torch.Generator] = None,
    dropout_reference: Optional[Mapping[str, Tuple[float, int]]] = None,
) -> Tuple[List[Dict[str, List[int]]], ReallocationSummary, List[ModuleChange]]:
    """Plan and apply one event to ``encoder`` in place.

    Args (beyond :func:`plan_reallocation`):
        split_output: see :func:`~espnet_dynenc.reallocation.groups.regroup`
            (DMAO copies as is: ``False``).
        noise_std, generator: Gaussian noise on the copies (seeded for reproducibility).
        dropout_reference: from :func:`dropout_reference_from`; when given, every rebuilt
            module's dropouts (its own and its output's) are rescaled with its width.

    Returns index lists, summary and the module changes (old modules included, for
    carrying optimizer state over). The caller resets its importance tracker.
    """
    index_lists, summary = plan_reallocation(encoder, scores, rho, group_sizes)
    groups = {(b, name): len(listed) for b, lists in enumerate(index_lists) for name, listed in lists.items()}
    internal, output = rescaled_dropouts(encoder, groups, dropout_reference)
    before = sum(p.numel() for p in encoder.parameters())
    changes = apply_architecture(encoder, index_lists, group_sizes=group_sizes, split_output=split_output,
                                 noise_std=noise_std, generator=generator, dropout_rates=internal)
    set_output_dropouts(encoder, output)
    after = sum(p.numel() for p in encoder.parameters())
    if after - before != summary.param_change:
        raise RuntimeError(
            f"reallocation changed the parameter count by {after - before}, its ledger says {summary.param_change}"
        )
    return index_lists, summary, changes
