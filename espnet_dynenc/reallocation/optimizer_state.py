"""Keep an optimizer in step with modules that a reallocation event replaced.

After an event the encoder holds new parameter tensors. The optimizer's parameter
groups are edited in place (so a learning-rate scheduler holding the optimizer keeps
its step count and its view of the groups): every old parameter is swapped for its
successor at the same position, parameters that no longer exist (a module emptied, its
pre-norm removed) leave the groups. Per-parameter state (Adam's ``exp_avg`` and
``exp_avg_sq``) is either gathered with the event's index map, so a copied group
inherits its source's moments, or dropped so that it starts afresh.
"""
from typing import Dict, Iterable, Sequence

import torch

from espnet_dynenc.reallocation.groups import gather_state
from espnet_dynenc.reallocation.rebuild import ModuleChange


def _successors(changes: Sequence[ModuleChange]) -> Dict[int, tuple]:
    """id(old parameter) -> (new parameter or None, its change, its name in the module)."""
    successors = {}
    for change in changes:
        new_params = dict(change.new_module.named_parameters()) if change.new_module is not None else {}
        for name, old in change.old_module.named_parameters():
            successors[id(old)] = (new_params.get(name), change, name)
    return successors


def _gathered_state(state: dict, old: torch.Tensor, change: ModuleChange, name: str) -> dict:
    """The state of ``old`` mapped onto its successor: tensors shaped like the parameter are
    regrouped, anything else (Adam's ``step``) is copied."""
    out = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.shape == old.shape and value.dim() > 0:
            out[key] = gather_state(change.old_module, {name: value}, change.index_list, change.group_size)[name]
        else:
            out[key] = value.clone() if isinstance(value, torch.Tensor) else value
    return out


def replace_parameters(
    optimizer: torch.optim.Optimizer,
    changes: Sequence[ModuleChange],
    live_parameters: Iterable[torch.nn.Parameter],
    carry_state: bool = True,
) -> None:
    """Edit ``optimizer`` in place after ``changes``.

    Args:
        optimizer: the optimizer of the model whose modules changed.
        changes: what the event did (``reallocate`` / ``apply_architecture``).
        live_parameters: every parameter of the model after the event; a parameter of
            the optimizer that is neither replaced nor live (e.g. the pre-norm of an
            emptied module) is removed with its state.
        carry_state: gather the per-parameter state with the event's index map (True)
            or start the new parameters with empty state (False).
    """
    successors = _successors(changes)
    live = {id(p) for p in live_parameters}
    for group in optimizer.param_groups:
        kept = []
        for param in group["params"]:
            state = optimizer.state.pop(param, None)
            if id(param) in successors:
                new, change, name = successors[id(param)]
                if new is None:
                    continue
                if state and carry_state:
                    optimizer.state[new] = _gathered_state(state, param, change, name)
                kept.append(new)
            elif id(param) in live:
                if state is not None:
                    optimizer.state[param] = state
                kept.append(param)
        group["params"] = kept


def missing_parameters(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> list:
    """Names of trainable parameters of ``model`` that ``optimizer`` does not update."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    return [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in held]
