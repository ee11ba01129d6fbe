"""A trained stock ESPnet Conformer model as the start of a supernet (``bin/init_supernet``).

Most ESPnet users have a trained Conformer and want smaller sizes of it without training
from scratch; starting the sizes from a trained full model is also one of the levers for
their accuracy (Once-for-All trains the full network first). ``dynamic_conformer`` keeps
ESPnet's parameter names, so the encoder's tensors carry over one to one; what a supernet
has beyond them are the CTC heads of the smaller sizes, which start here as copies of the
model's own head: before any fine-tuning the full size computes exactly the stock model's
posteriors, and every smaller size starts from a head that already maps this encoder's
features to tokens.

:func:`convert` writes, into one directory, whole or not at all:

* ``config.yaml``: the stock model's config with ``encoder: dynamic_conformer`` and
  ``model: supernet_ctc`` (sizes and schedule from the training config), the file names
  pointing at the copies below; ``ASRTask.build_model_from_file`` and ``Speech2Text`` load it;
* ``model.pth``: the stock model's frontend, normalisation and encoder tensors, its CTC head,
  and a copy of that head for every smaller size; nothing else, so the supernet's own state
  (update counter, selection scores) starts fresh when training loads it (``--init_param``,
  asr.sh ``--pretrained_model``);
* ``feats_stats.npz``, ``bpe.model`` (and ``tokens.txt`` where the config names a file): the
  statistics and tokens the model was trained with;
* ``train_<method>.yaml`` (unless a training config is given): a short fine-tuning config for
  asr.sh ``--asr_config``, Dynamic Encoder Size (Step 1 + Step 2) or layer pruning on demand;
* ``init.yaml``: where it came from and what was carried, left out and started.

A hybrid CTC/attention model is accepted: the supernet is CTC-only, so its decoder is left
out (the result says so). A model whose encoder is not a Conformer, without a CTC head, or
whose tensors do not fit the supernet the training config builds is refused by name.
"""
import argparse
import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import yaml

from espnet_dynenc.atomic_files import write_directory_atomically
from espnet_dynenc.deploy.compact import compact_model_conf, copy_referenced_files
from espnet_dynenc.encoder.layout import default_unit_order
from espnet_dynenc.espnet_task import DynEncASRTask, epochs_ending_after
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel
from espnet_dynenc.pretrained.init_spec import INFO_FILE, MODEL_FILE
from espnet_dynenc.pretrained.source import CONFIG_FILE, ModelFiles, check_conformer, load_state, read_config

METHODS = ("des", "prune_on_demand")
# what a generated fine-tuning config keeps of the stock model's training config
CARRIED_TRAINING_KEYS = ("frontend", "frontend_conf", "specaug", "specaug_conf", "preencoder", "preencoder_conf",
                         "ctc_conf", "optim", "optim_conf", "batch_type", "batch_size", "batch_bins", "accum_grad",
                         "grad_clip", "use_amp", "num_workers", "seed")


@dataclass(frozen=True)
class FineTuning:
    """The schedule of a generated fine-tuning config.

    ``updates`` optimizer updates in ``epochs`` epochs under a one-cycle learning rate that
    peaks at ``lr`` (default: the stock config's ``optim_conf.lr``) after a tenth of them; for
    DES, Step 1 (learned selection, k annealed one unit at a time from the full size to the
    smallest) takes ``step1_fraction`` of the updates and Step 2 (fixed masks, sandwich rule)
    the rest.
    """

    updates: int = 6000
    epochs: int = 6
    lr: Optional[float] = None
    step1_fraction: float = 0.4

    def check(self) -> None:
        if self.updates < self.epochs or self.epochs < 1:
            raise ValueError(f"--updates {self.updates} and --epochs {self.epochs}: need at least one update per "
                             "epoch and one epoch")
        if not 0.0 < self.step1_fraction < 1.0:
            raise ValueError(f"--step1_fraction must be between 0 and 1, got {self.step1_fraction}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


@dataclass
class Conversion:
    """What :func:`convert` wrote."""

    output_dir: Path
    source: str
    method: str
    subnet_sizes: List[int]
    train_config: Path  # the config to fine-tune with (generated into output_dir, or the one given)
    parameters: int  # of the supernet
    dropped: List[str] = field(default_factory=list)  # what of the stock model is not carried, and why

    def commands(self) -> List[str]:
        """How to fine-tune it with the recipe (from the recipe directory)."""
        return [f"./run.sh --stage 10 --asr_config {self.train_config} "
                f"--pretrained_model {self.output_dir / MODEL_FILE}"]


# ----------------------------------------------------------------------------- configs
def units_per_block(encoder_conf: dict) -> int:
    """Units (modules) of one Conformer block with ESPnet's switches (default values of
    ``ConformerEncoder``: no macaron FFN, a convolution module)."""
    order = encoder_conf.get("unit_order") or default_unit_order(bool(encoder_conf.get("macaron_style", False)),
                                                                bool(encoder_conf.get("use_cnn_module", True)))
    return len(order)


def encoder_units(encoder_conf: dict) -> int:
    return int(encoder_conf.get("num_blocks", 6)) * units_per_block(encoder_conf)


def default_sizes(units: int) -> List[int]:
    """A third, two thirds and all of the units (the papers' 16 / 32 / 48 of 48)."""
    return sorted({max(1, round(units / 3)), max(1, round(2 * units / 3)), units})


def check_stock_model(config: dict, config_file: Path, option: str) -> None:
    """A stock ESPnet ASR model (``model: espnet``) with a Conformer encoder and a CTC head."""
    check_conformer(config, config_file, option)
    model = config.get("model") or "espnet"
    if model == "supernet_ctc":
        raise ValueError(f"{option}: {config_file} is already a supernet (model: supernet_ctc); fine-tune it with "
                         "asr.sh --pretrained_model <its checkpoint> instead of converting it")
    if model != "espnet":
        raise ValueError(f"{option}: {config_file} builds model '{model}'; only ESPnet's CTC or CTC/attention model "
                         "(model: espnet) is converted")
    ctc_weight = (config.get("model_conf") or {}).get("ctc_weight", 0.5)
    if ctc_weight == 0.0:
        raise ValueError(f"{option}: {config_file} has ctc_weight 0.0: the model has no CTC head to start the "
                         "supernet's heads from")


def size_criteria(sizes: Sequence[int]) -> List[List[str]]:
    """Each smaller size checkpointed by its own dev CER, the full size by ``cer_ctc``."""
    return [["valid", f"cer_ctc_{size}", "min"] for size in sizes[:-1]] + [["valid", "cer_ctc", "min"]]


def generated_train_config(stock: dict, method: str, sizes: Sequence[int], schedule: FineTuning) -> dict:
    """A fine-tuning config for asr.sh ``--asr_config``: the stock model's frontend, encoder,
    optimiser and batches; the method's model; :class:`FineTuning`'s schedule."""
    if method not in METHODS:
        raise ValueError(f"--method '{method}' is not supported (choose from: {', '.join(METHODS)})")
    schedule.check()
    lr = schedule.lr if schedule.lr is not None else (stock.get("optim_conf") or {}).get("lr")
    if lr is None:
        raise ValueError("--lr: the stock config has no optim_conf.lr; give the peak learning rate of fine-tuning")
    config = {key: copy.deepcopy(stock[key]) for key in CARRIED_TRAINING_KEYS if stock.get(key) is not None}
    encoder_conf = dict(stock.get("encoder_conf") or {})
    model_conf = compact_model_conf(stock.get("model_conf"))
    accum = max(1, int(config.get("accum_grad", 1) or 1))
    per_epoch = math.ceil(schedule.updates / schedule.epochs)
    updates = per_epoch * schedule.epochs
    if method == "des":
        units = encoder_units(encoder_conf)
        steps = units - sizes[0]  # k from units - 1 down to the smallest size, one unit at a time
        per_k = max(1, round(schedule.step1_fraction * updates / steps))
        model_conf.update(subnet_sizes=list(sizes), selector="simple_topk",
                          selector_conf={"updates_per_k_step": per_k, "k_reduction": 1})
        keep = min(3, max(1, epochs_ending_after(per_k * steps, per_epoch, schedule.epochs)))
        criteria = size_criteria(sizes)
    else:
        blocks = int(encoder_conf.get("num_blocks", 6))
        encoder_conf.update(interctc_layer_idx=sorted({i for i in (blocks // 3, 2 * blocks // 3) if 0 < i < blocks}),
                            stochastic_depth_rate=0.2, stochastic_depth_schedule="linear",
                            stochastic_depth_mode="batch")
        model_conf["interctc_weight"] = 0.3 if encoder_conf["interctc_layer_idx"] else 0.0
        keep = min(3, schedule.epochs)
        criteria = size_criteria([0])
    config["optim_conf"] = {**(config.get("optim_conf") or {}), "lr": lr}
    config.update(
        encoder="dynamic_conformer", encoder_conf=encoder_conf, model="supernet_ctc", model_conf=model_conf,
        max_epoch=schedule.epochs, num_iters_per_epoch=per_epoch * accum,
        scheduler="onecyclelr",
        scheduler_conf={"max_lr": lr, "total_steps": updates, "pct_start": 0.1, "anneal_strategy": "linear",
                        "cycle_momentum": False, "div_factor": 25.0, "final_div_factor": 1000.0},
        best_model_criterion=criteria, keep_nbest_models=keep,
    )
    return config


def given_train_config(path: str) -> dict:
    """``--train_config``: a fine-tuning config of this package's supernet."""
    config = read_config(path, "--train_config")
    if config.get("encoder") != "dynamic_conformer" or config.get("model") != "supernet_ctc":
        raise ValueError(f"--train_config {path}: needs encoder: dynamic_conformer and model: supernet_ctc, got "
                         f"encoder: {config.get('encoder')} and model: {config.get('model')}")
    return config


def method_of(train: dict) -> str:
    """What a given supernet config trains: ``des`` (a selector), ``prune_on_demand``
    (intermediate CTC) or ``supernet`` (fixed masks)."""
    model_conf = train.get("model_conf") or {}
    if model_conf.get("selector"):
        return "des"
    return "prune_on_demand" if model_conf.get("interctc_weight") else "supernet"


def model_config(stock: dict, train: dict) -> dict:
    """The supernet's full config: ESPnet's defaults, the stock model's config, the training
    config's encoder and model; no decoder (the supernet is CTC-only)."""
    config = vars(DynEncASRTask.get_parser().parse_args([]))
    config.update(copy.deepcopy(stock))
    config.update(encoder="dynamic_conformer", encoder_conf=copy.deepcopy(train.get("encoder_conf") or {}),
                  model="supernet_ctc", model_conf=copy.deepcopy(train.get("model_conf") or {}),
                  decoder=None, decoder_conf={}, init_param=[])
    return config


# ----------------------------------------------------------------------------- tensors
def supernet_state(stock_state: Dict[str, object], supernet: ESPnetSupernetCTCModel,
                   train_source: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """(the supernet's tensors taken from the stock model, the stock names left out).

    Every stock tensor but the decoder's must have a place of the same shape in the
    supernet, and every encoder tensor of the supernet must come from the stock model:
    otherwise the training config's encoder is not the stock model's.
    """
    target = supernet.state_dict()
    state, dropped = {}, []
    for name, value in stock_state.items():
        if name.startswith("decoder."):
            dropped.append(name)
            continue
        if name not in target and name.startswith("encoder."):
            raise ValueError(f"the stock model's '{name}' has no place in the supernet of {train_source}: its "
                             "encoder_conf differs from the stock model's (use the stock encoder_conf; "
                             "conv_norm must stay batch_norm)")
        if name not in target:
            raise ValueError(f"the stock model's '{name}' has no place in the supernet of {train_source}, a CTC "
                             "model of frontend, normalisation, encoder and CTC heads (only ESPnet's CTC and "
                             "CTC/attention models are converted)")
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(target[name].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"parameter '{name}' has shape {list(shape)} in the stock model but "
                             f"{list(target[name].shape)} in the supernet of {train_source} (use the stock "
                             "model's sizes in encoder_conf and frontend_conf)")
        state[name] = value.detach().clone()
    missing = [name for name in target if name.startswith("encoder.") and name not in state]
    if missing:
        raise ValueError(f"the supernet of {train_source} has '{missing[0]}', which the stock model lacks "
                         f"({len(missing)} such encoder tensors): its encoder_conf differs from the stock model's")
    if "ctc.ctc_lo.weight" not in state:
        raise ValueError("the stock model has no CTC head (ctc.ctc_lo.*) to start the supernet's heads from")
    for size, head in supernet.subnet_ctcs.items():
        for key in head.state_dict():
            state[f"subnet_ctcs.{size}.{key}"] = state[f"ctc.{key}"].clone()
    return state, dropped


def describe_dropped(names: Sequence[str], stock: dict) -> List[str]:
    """What was left out, for the console and ``init.yaml``."""
    if not names:
        return []
    count = len(names)
    weight = (stock.get("model_conf") or {}).get("ctc_weight", 0.5)
    return [f"the attention decoder ({stock.get('decoder')}, {count} tensors): the supernet is CTC-only; every size "
            f"starts from the CTC head (trained with ctc_weight {weight})"]


def check_referenced_files(config: dict, config_file: Path) -> None:
    """The statistics and BPE files the stock config names exist (ESPnet's paths are
    relative to the directory the model was trained in)."""
    named = [("normalize_conf.stats_file", (config.get("normalize_conf") or {}).get("stats_file")),
             ("bpemodel", config.get("bpemodel"))]
    if isinstance(config.get("token_list"), str):
        named.append(("token_list", config["token_list"]))
    for key, path in named:
        if path and not Path(path).is_file():
            raise FileNotFoundError(
                f"{config_file} names {key} {path}, which does not exist here: run from the directory the model was "
                "trained in (ESPnet's paths are relative to it), or convert its `espnet2.bin.pack asr` zip")


# ----------------------------------------------------------------------------- conversion
def convert(files: ModelFiles, output_dir: str, method: str = "des", train_config: Optional[str] = None,
            subnet_sizes: Optional[Sequence[int]] = None, schedule: FineTuning = FineTuning()) -> Conversion:
    """Write the supernet checkpoint (see the module docstring); ``train_config`` replaces
    the generated fine-tuning config (``method``, ``subnet_sizes`` and ``schedule`` then
    come from it)."""
    option = "--packed_model" if files.packed else "--asr_train_config"
    stock = read_config(files.config, option)
    check_stock_model(stock, files.config, option)
    check_referenced_files(stock, files.config)
    stock_state = load_state(files.model, "--packed_model" if files.packed else "--asr_model_file")
    out = Path(output_dir)
    if out.exists():
        raise FileExistsError(f"--output_dir {out} exists (delete it to convert again)")
    if train_config is not None:
        if subnet_sizes is not None:
            raise ValueError("--subnet_sizes comes from --train_config's model_conf when one is given; leave it out")
        train = given_train_config(train_config)
        method = method_of(train)
        train_source = train_config
    else:
        units = encoder_units(stock.get("encoder_conf") or {})
        sizes = sorted(set(subnet_sizes)) if subnet_sizes else default_sizes(units)
        if method == "prune_on_demand":
            sizes = [units]
        if sizes[-1] != units:
            raise ValueError(f"--subnet_sizes {list(sizes)}: the last size must be the whole encoder, {units} units "
                             f"({units // units_per_block(stock.get('encoder_conf') or {})} blocks)")
        train = generated_train_config(stock, method, sizes, schedule)
        train_source = f"the generated {method} config"
    result: Dict[str, object] = {}

    def write(folder: Path) -> None:
        config = model_config(stock, train)
        copy_referenced_files(config, folder)  # the config names the copies in the folder
        try:
            supernet = DynEncASRTask.build_model(argparse.Namespace(**copy.deepcopy(config)))
        except (ValueError, TypeError) as error:
            raise ValueError(f"the supernet of {train_source} cannot be built from the stock model's config: "
                             f"{error}") from error
        config = _moved(config, folder, out)  # and their names once the folder is renamed
        state, dropped = supernet_state(stock_state, supernet, train_source)
        torch.save(state, folder / MODEL_FILE)
        (folder / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        trained_with = Path(train_config) if train_config else out / f"train_{method}.yaml"
        if train_config is None:
            (folder / trained_with.name).write_text(_train_header(files, method, train) + yaml.safe_dump(
                train, sort_keys=False, default_flow_style=None, width=110), encoding="utf-8")
        result.update(sizes=list(supernet.subnet_sizes), dropped=describe_dropped(dropped, stock),
                      parameters=sum(p.numel() for p in supernet.parameters()), train=trained_with)
        source = ({"packed_model": str(files.packed)} if files.packed else
                  {"asr_train_config": str(files.config), "asr_model_file": str(files.model)})
        info = {"source": source,
                "method": method, "subnet_sizes": result["sizes"], "train_config": str(trained_with),
                "heads": {str(size): "copy of the stock model's CTC head" for size in supernet.subnet_sizes},
                "carried": sorted({name.split(".", 1)[0] for name in stock_state if name in state}),
                "dropped": result["dropped"], "parameters": result["parameters"]}
        (folder / INFO_FILE).write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")

    write_directory_atomically(out, write)
    return Conversion(out, files.name, method, result["sizes"], result["train"], result["parameters"],
                      result["dropped"])


def _moved(config: dict, folder: Path, final: Path) -> dict:
    """The config with the file entries that point into ``folder`` pointing into ``final``."""
    def moved(path: str) -> str:
        return str(final / Path(path).name) if Path(path).parent == folder else path

    config = copy.deepcopy(config)
    if (config.get("normalize_conf") or {}).get("stats_file"):
        config["normalize_conf"]["stats_file"] = moved(config["normalize_conf"]["stats_file"])
    for key in ("bpemodel", "token_list"):
        if isinstance(config.get(key), str):
            config[key] = moved(config[key])
    return config


def _train_header(files: ModelFiles, method: str, train: dict) -> str:
    updates = train["scheduler_conf"]["total_steps"]
    lines = [f"Fine-tuning config written by espnet_dynenc.bin.init_supernet from {files.name}.",
             f"Method: {method}; {updates} updates in {train['max_epoch']} epochs, one-cycle learning rate peaking at "
             f"{train['optim_conf']['lr']}."]
    if method == "des":
        selector = train["model_conf"]["selector_conf"]
        sizes = train["model_conf"]["subnet_sizes"]
        step1 = selector["updates_per_k_step"] * (encoder_units(train["encoder_conf"]) - sizes[0])
        lines.append(f"Step 1 (learned selection, k = {encoder_units(train['encoder_conf']) - 1} down to {sizes[0]}) "
                     f"ends after {step1} updates, Step 2 (sandwich rule) the rest; sizes {sizes}.")
    lines.append("Train with: ./run.sh --stage 10 --asr_config <this file> --pretrained_model <its model.pth>")
    return "".join(f"# {line}\n" for line in lines)

