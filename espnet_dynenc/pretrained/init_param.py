"""ESPnet's ``--init_param``, checked before training starts.

ESPnet's trainer loads ``path[:src_key:dst_key:excluded]`` after building the model
(``espnet2.torch_utils.load_pretrained_model``): it drops the checkpoint's tensors whose
names start with one of the comma-separated ``excluded`` prefixes, keeps those under
``src_key`` (without that prefix) and loads them into the module ``dst_key`` of the model
(the whole model when empty), strictly: a name the module lacks or a tensor of another
shape stops the training, after the data are read, possibly on a remote machine. With
``--ignore_init_mismatch true`` such tensors are left out instead, with one warning in
train.log. Worse, a model trained on another token list of the same size loads without a
word and starts from output layers whose rows mean other tokens.

:func:`check_pretrained_model` finds all of this before training, from the checkpoint, its
``config.yaml`` (ESPnet writes it beside every checkpoint; it has the token list and the
encoder) and the model that the training options build, and names the first culprit:

* the file (missing), the spec (malformed, or selecting nothing);
* the encoder, when encoder tensors are loaded and the model's is not a Conformer;
* the token list, when output layers (CTC heads, a decoder) are loaded: the first token
  that differs from the recipe's, with its index;
* the first tensor whose name the new model lacks or whose shape differs, with both shapes
  (unless ``--ignore_init_mismatch true``, which leaves them out as ESPnet does).
"""
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from espnet_dynenc.decode.token_lists import first_difference, token_list_of
from espnet_dynenc.pretrained.init_spec import OPTION, InitParam
from espnet_dynenc.pretrained.source import CONFIG_FILE, check_conformer, load_state, read_config, token_list

# tensors whose rows or inputs are tokens: loading them from another token list is wrong
TOKEN_DEPENDENT = ("ctc.", "subnet_ctcs.", "decoder.", "joint_network.")
Shape = Optional[Tuple[int, ...]]  # None: a state-dict entry that is not a tensor (a model's extra state)


@dataclass
class InitFit:
    """How the selected tensors meet the new model's state dict."""

    loaded: List[str] = field(default_factory=list)  # names that load
    unknown: List[str] = field(default_factory=list)  # names the new model lacks
    mismatched: List[Tuple[str, Shape, Shape]] = field(default_factory=list)  # (name, checkpoint's, model's)


def shape_of(value: object) -> Shape:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def fit_state(selected: Dict[str, object], target: Dict[str, Shape], unchecked: Sequence[str] = ()) -> InitFit:
    """Sort the selected entries by whether they load; names under an ``unchecked`` prefix
    count as loading (what the model will have there is not known before training)."""
    fit = InitFit()
    for name, value in selected.items():
        if any(name.startswith(prefix) for prefix in unchecked):
            fit.loaded.append(name)
        elif name not in target:
            fit.unknown.append(name)
        elif shape_of(value) is not None and target[name] is not None and shape_of(value) != target[name]:
            fit.mismatched.append((name, shape_of(value), target[name]))
        else:
            fit.loaded.append(name)
    return fit


def training_model_shapes(train_args: Sequence[str]) -> Tuple[Dict[str, Shape], Tuple[str, ...]]:
    """The state-dict shapes of the model ESPnet's trainer builds from ``train_args`` (the
    config, token list and model options of asr.sh stage 11), and the name prefixes that
    cannot be checked yet: the global_mvn statistics before stage 10 has written them."""
    from espnet_dynenc.espnet_task import DynEncASRTask

    parser = DynEncASRTask.get_parser()
    try:
        args = parser.parse_args(list(train_args))
    except SystemExit as error:
        raise ValueError(f"the training options {shlex.join(train_args)} do not parse (see above)") from error
    unchecked: Tuple[str, ...] = ()
    if args.normalize == "global_mvn":
        stats = (args.normalize_conf or {}).get("stats_file")
        if not stats or not Path(stats).is_file():
            args.normalize, args.normalize_conf = None, {}
            unchecked = ("normalize.",)
    model = DynEncASRTask.build_model(args)
    return {name: shape_of(value) for name, value in model.state_dict().items()}, unchecked


def _top_module(name: str) -> str:
    return name.split(".", 1)[0]


def check_tokens(param: InitParam, config_file: Path, recipe_tokens: str, loaded: Sequence[str],
                 option: str = OPTION) -> None:
    """The model's token list is the recipe's (else the first difference, and the fixes:
    ``loaded`` names the tensors that would load, whose token-dependent modules can be left out)."""
    model_tokens = token_list(config_file, option)
    tokens = token_list_of(recipe_tokens)
    if model_tokens == tokens:
        return
    index = first_difference(model_tokens, tokens)
    in_model = repr(model_tokens[index]) if index < len(model_tokens) else "nothing"
    in_recipe = repr(tokens[index]) if index < len(tokens) else "nothing"
    output_layers = [p.rstrip(".") for p in TOKEN_DEPENDENT if any(name.startswith(p) for name in loaded)]
    without = InitParam(param.path, param.src_key, param.dst_key, tuple(e for e in param.excludes if e)
                        + tuple(_source_prefix(param, prefix) for prefix in output_layers))
    raise ValueError(
        f"{option} {param.path}: the model's token list differs from the recipe's: {config_file} has "
        f"{len(model_tokens)} tokens, {recipe_tokens} has {len(tokens)}; token {index} is {in_model} in the model "
        f"and {in_recipe} in the recipe (train on the model's token list and BPE model, or leave its output layers "
        f"out: {option} {without.spec()})")


def _module_of(param: InitParam, name: str) -> str:
    """The module a loaded tensor belongs to: the first name under ``dst_key`` (or of the model)."""
    if param.dst_key is not None and name.startswith(f"{param.dst_key}."):
        return f"{param.dst_key}.{_top_module(name[len(param.dst_key) + 1:])}"
    return _top_module(name)


def _source_prefix(param: InitParam, target_prefix: str) -> str:
    """A module's name in the new model as the checkpoint names it (what ``excluded`` matches)."""
    name = target_prefix
    if param.dst_key is not None:
        name = name[len(param.dst_key) + 1:] if name.startswith(f"{param.dst_key}.") else name
    return f"{param.src_key}.{name}" if param.src_key is not None else name


def check_fit(param: InitParam, fit: InitFit, what: str, ignore_init_mismatch: bool, option: str = OPTION) -> None:
    """Refuse names the new model lacks and tensors of other shapes, unless ignored."""
    if ignore_init_mismatch:
        return
    if fit.mismatched:
        name, source, target = fit.mismatched[0]
        raise ValueError(
            f"{option} {param.path}: parameter '{name}' has shape {list(source)} in the checkpoint but "
            f"{list(target)} in the model of {what} ({len(fit.mismatched)} tensor(s) differ; give the config the "
            f"pretrained model's sizes, or start them afresh with --ignore_init_mismatch true)")
    if fit.unknown:
        name = fit.unknown[0]
        raise ValueError(
            f"{option} {param.path}: the model of {what} has no '{name}' ({len(fit.unknown)} tensor(s) of the "
            f"checkpoint have no place in it, under {sorted({_top_module(n) for n in fit.unknown})}); leave them "
            f"out: {option} {param.excluding(_source_prefix(param, _module_of(param, name))).spec()}, or use "
            "--ignore_init_mismatch true")


def describe_fit(param: InitParam, fit: InitFit, ignore_init_mismatch: bool) -> str:
    """One line for the console: what loads where, and what is left out."""
    groups = Counter(_top_module(name) for name in fit.loaded)
    line = f"{len(fit.loaded)} tensors of {param.path} load ({', '.join(f'{k} {v}' for k, v in groups.items())})"
    left = len(fit.unknown) + len(fit.mismatched)
    if ignore_init_mismatch and left:
        first = (f"'{fit.mismatched[0][0]}' {list(fit.mismatched[0][1])} vs {list(fit.mismatched[0][2])}"
                 if fit.mismatched else f"'{fit.unknown[0]}' (no such parameter)")
        line += f"; {left} left out by --ignore_init_mismatch true, e.g. {first}"
    return line


def check_pretrained_model(spec: str, ignore_init_mismatch: bool, recipe_tokens: str, train_args: Sequence[str],
                           what: Optional[str] = None, option: str = OPTION) -> str:
    """Everything :mod:`this module <espnet_dynenc.pretrained.init_param>` checks; returns
    :func:`describe_fit`'s line. ``recipe_tokens``: the recipe's tokens.txt (or a config)."""
    param = InitParam.parse(spec, option)
    model_file = Path(param.path)
    if not model_file.is_file():
        raise FileNotFoundError(f"{option}: file '{model_file}' does not exist")
    config_file = model_file.parent / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{option} {model_file}: no {CONFIG_FILE} beside it; ESPnet writes the training config next to its "
            f"checkpoints, and the check needs its token list and encoder (copy the model's {CONFIG_FILE} there)")
    if not Path(recipe_tokens).is_file():
        raise FileNotFoundError(f"the recipe's token list {recipe_tokens} does not exist (stage 5 writes it)")
    config = read_config(config_file, option)
    selected = param.selected(load_state(model_file, option))
    if not selected:
        raise ValueError(f"{option} {param.spec()}: selects no tensor of {model_file} (src_key '{param.src_key}', "
                         f"excluded {list(param.excludes)}; an empty excluded part excludes everything)")
    target, unchecked = training_model_shapes(train_args)
    if param.dst_key is not None and not any(name.startswith(f"{param.dst_key}.") for name in target):
        raise ValueError(f"{option} {param.spec()}: the new model has no module '{param.dst_key}'")
    if any(name.startswith("encoder.") for name in selected):
        check_conformer(config, config_file, f"{option} {param.path}")
    fit = fit_state(selected, target, unchecked)
    what = what or _config_of(train_args)
    # the token check looks at what will load: with --ignore_init_mismatch, output layers of
    # another size are left out anyway
    loading = fit.loaded if ignore_init_mismatch else list(selected)
    if any(name.startswith(TOKEN_DEPENDENT) for name in loading):
        check_tokens(param, config_file, recipe_tokens, loading, option)
    check_fit(param, fit, what, ignore_init_mismatch, option)
    if not fit.loaded:
        raise ValueError(f"{option} {model_file}: no tensor of it fits the model of {what}")
    return describe_fit(param, fit, ignore_init_mismatch)


def _config_of(train_args: Sequence[str]) -> str:
    """The ``--config`` among training options, for messages."""
    args = list(train_args)
    for index, word in enumerate(args[:-1]):
        if word == "--config":
            return args[index + 1]
    return "the training options"

