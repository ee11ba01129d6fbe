"""Cut one size out of a trained supernet as a standalone ESPnet model.

Inside the supernet every size is a mask over the full checkpoint, and running it needs
this package. A deployment wants a model file that holds only what that size computes.
:func:`export_compact` writes, into one directory, an ordinary ESPnet ASR model
(``model: espnet``, ``ctc_weight: 1.0``, one CTC head):

* ``config.yaml``: the training config with the encoder cut down. Blocks removed by a
  pruning plan are gone; a pruned unit keeps its place with width 0 (an identity, no
  parameters); a block whose units are all pruned keeps only its final norm, which the
  supernet still runs there.
* ``model.pth``: only the parameters that size uses, so the file shrinks with the size.
* ``feats_stats.npz`` and ``bpe.model``: copies of what the config points to, so the
  directory (or ESPnet's ``pack`` zip of it) is self-contained.
* ``export.yaml``: where it came from, what it keeps, and why it is or is not a stock
  encoder; written last, so its presence marks a finished export.

When the kept units form whole blocks of ESPnet's stock Conformer (every block that runs
keeps all its units at the default widths, with ESPnet's unit order, macaron FFNs and
batch-norm convolutions), the encoder is written as ESPnet's own ``conformer``: loadable
by ESPnet alone. Otherwise it stays a compact ``dynamic_conformer`` (needs ``import
espnet_dynenc``), and ``export.yaml`` says why. Note that a DES subnet that prunes every
unit of a block is not stock: the supernet still applies that block's final norm.
"""
import argparse
import copy
import inspect
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import yaml

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc before ESPnet reads a config

from espnet2.asr.encoder.conformer_encoder import ConformerEncoder  # noqa: E402
from espnet2.asr.espnet_model import ESPnetASRModel  # noqa: E402
from espnet2.tasks.asr import ASRTask  # noqa: E402

from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically  # noqa: E402
from espnet_dynenc.entry import add_model_arguments  # noqa: E402
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel  # noqa: E402
from espnet_dynenc.pruning.plan import PruningPlan  # noqa: E402

STOCK_UNIT_ORDER = ["ffn", "mhsa", "conv", "ffn"]
STOCK_UNIT_SCALES = [0.5, 1.0, 1.0, 0.5]
MODEL_FILE = "model.pth"
CONFIG_FILE = "config.yaml"
INFO_FILE = "export.yaml"


@dataclass(frozen=True)
class Cut:
    """The part of the supernet to export: a size, with the blocks a pruning plan removes."""

    size: int
    skip_blocks: Tuple[int, ...] = ()
    strategy: Optional[str] = None
    depth: Optional[int] = None

    @property
    def name(self) -> str:
        """``16``, or ``24_top4`` for subnet 24 pruned to 4 blocks by ``top``."""
        return str(self.size) if self.strategy is None else f"{self.size}_{self.strategy}{self.depth}"


@dataclass(frozen=True)
class CompactExport:
    """What :func:`export_compact` wrote."""

    output_dir: Path
    cut: Cut
    encoder: str  # conformer or dynamic_conformer
    parameters: int
    model_bytes: int
    not_stock: Tuple[str, ...]  # why the encoder is not ESPnet's stock conformer (empty: it is)


def add_cut_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name a model and the cut of it to export (``export_subnet``,
    ``export_onnx``), checked by :func:`resolve_cut`."""
    add_model_arguments(parser)
    parser.add_argument("--subnet", type=int, default=None, help="the size to export (units kept)")
    parser.add_argument("--pruning_plan", default=None,
                        help="prune_on_demand's pruning_plan.yaml: export its subnet with blocks removed")
    parser.add_argument("--strategy", default=None, help="with --pruning_plan: top, every_other, svcca or greedy")
    parser.add_argument("--depth", type=int, default=None, help="with --pruning_plan: blocks kept")


def resolve_cut(model: ESPnetSupernetCTCModel, size: Optional[int], pruning_plan: Optional[str] = None,
                strategy: Optional[str] = None, depth: Optional[int] = None) -> Cut:
    """The options ``--subnet`` / ``--pruning_plan --strategy --depth`` as a checked :class:`Cut`."""
    if pruning_plan is None:
        if strategy is not None or depth is not None:
            raise ValueError("--strategy and --depth need --pruning_plan")
        if size is None:
            raise ValueError("--subnet is required (or --pruning_plan with --strategy and --depth)")
        if size not in model.subnet_sizes:
            raise ValueError(f"--subnet: {size} is not one of this model's sizes {model.subnet_sizes}")
        return Cut(size)
    if strategy is None or depth is None:
        raise ValueError(f"--pruning_plan {pruning_plan}: give --strategy and --depth too")
    plan = PruningPlan.load(pruning_plan, model)
    if size is not None and size != plan.subnet:
        raise ValueError(f"--subnet {size}: the plan {pruning_plan} prunes subnet {plan.subnet}")
    return Cut(plan.subnet, plan.removed(strategy, depth), strategy, depth)


def unit_widths(encoder) -> List[Dict[str, int]]:
    """Per block, the width of each module as built (DMAO may have changed them)."""
    widths = []
    for block in encoder.encoders:
        widths.append({spec.module_name: (getattr(block, spec.module_name).width
                                          if getattr(block, spec.module_name) is not None else 0)
                       for spec in block.units})
    return widths


def kept_widths(model: ESPnetSupernetCTCModel, cut: Cut) -> Tuple[List[int], List[Dict[str, int]]]:
    """(blocks that run, their module widths with pruned units at 0)."""
    encoder = model.encoder
    mask = model.mask_for(cut.size)
    per_block = encoder.units_per_block
    blocks, widths = [], []
    for b, row in enumerate(unit_widths(encoder)):
        if b in cut.skip_blocks:
            continue
        blocks.append(b)
        widths.append({spec.module_name: (row[spec.module_name] if mask[b * per_block + p] else 0)
                       for p, spec in enumerate(encoder.unit_specs)})
    return blocks, widths


def stock_obstacles(model: ESPnetSupernetCTCModel, encoder_conf: dict, blocks: Sequence[int],
                    widths: Sequence[Dict[str, int]]) -> List[str]:
    """Why these blocks cannot be ESPnet's stock ``conformer`` (empty list: they can)."""
    encoder = model.encoder
    reasons = []
    order = [spec.kind for spec in encoder.unit_specs]
    if order != STOCK_UNIT_ORDER:
        reasons.append(f"unit_order {order} is not ESPnet's {STOCK_UNIT_ORDER} with macaron_style")
    elif [spec.scale for spec in encoder.unit_specs] != STOCK_UNIT_SCALES:
        reasons.append(f"unit_scales {[spec.scale for spec in encoder.unit_specs]} are not ESPnet's {STOCK_UNIT_SCALES}")
    conv_norm = encoder_conf.get("conv_norm", "batch_norm")
    if conv_norm != "batch_norm":
        reasons.append(f"conv_norm is {conv_norm}; ESPnet's conformer has batch_norm")
    output_size = encoder.output_size()
    heads = encoder_conf.get("attention_heads", 4)
    head_dim = encoder_conf.get("attention_head_dim")
    if head_dim is not None and head_dim * heads != output_size:
        reasons.append(f"attention_head_dim {head_dim} x {heads} heads is not output_size {output_size}")
    if encoder_conf.get("final_norm") not in (None, encoder_conf.get("use_cnn_module", True)):
        reasons.append("final_norm differs from ESPnet's (a block-final norm exactly when there is a conv module)")
    if encoder_conf.get("interctc_use_conditioning", False):
        reasons.append("interctc_use_conditioning needs the intermediate CTC layers")
    defaults = {"ffn": encoder_conf.get("linear_units", 2048), "mhsa": heads, "conv": output_size}
    for b, (block, row) in enumerate(zip(blocks, widths)):
        absent = [name for name, width in row.items() if width == 0]
        if len(absent) == len(row):
            reasons.append(f"block {block} keeps none of its units but still applies its final norm "
                           "(remove it with a pruning plan to drop it)")
        elif absent:
            reasons.append(f"block {block} lacks {', '.join(absent)} (pruned units)")
        for spec in encoder.unit_specs:
            width = row[spec.module_name]
            if width not in (0, defaults[spec.kind]):
                reasons.append(f"block {block}: {spec.module_name} has width {width}, not ESPnet's uniform "
                               f"{defaults[spec.kind]}")
    return reasons


def compact_encoder_conf(encoder_conf: dict, widths: Sequence[Dict[str, int]], stock: bool) -> dict:
    """The encoder options of the cut model (inference only: no stochastic depth, no InterCTC)."""
    conf = dict(encoder_conf)
    conf["num_blocks"] = len(widths)
    conf["interctc_layer_idx"] = []
    conf["stochastic_depth_rate"] = 0.0
    conf.pop("layer_drop_rate", None)
    if stock:
        allowed = set(inspect.signature(ConformerEncoder.__init__).parameters) - {"self", "input_size"}
        return {key: value for key, value in conf.items() if key in allowed}
    conf["block_widths"] = [dict(row) for row in widths]
    return conf


def compact_model_conf(model_conf: dict) -> dict:
    """ESPnet's ``ESPnetASRModel`` options of the training config, CTC only, no InterCTC loss."""
    allowed = set(inspect.signature(ESPnetASRModel.__init__).parameters)
    conf = {key: value for key, value in (model_conf or {}).items() if key in allowed}
    conf["ctc_weight"] = 1.0
    conf.pop("interctc_weight", None)
    return conf


def copy_referenced_files(config: dict, output_dir: Path) -> None:
    """Copy the statistics and token files the config points to into ``output_dir`` and
    point the config there (paths as ``output_dir`` was given, ESPnet's convention)."""
    normalize_conf = dict(config.get("normalize_conf") or {})
    if normalize_conf.get("stats_file"):
        target = output_dir / "feats_stats.npz"
        shutil.copyfile(normalize_conf["stats_file"], target)
        normalize_conf["stats_file"] = str(target)
        config["normalize_conf"] = normalize_conf
    if config.get("bpemodel"):
        target = output_dir / "bpe.model"
        shutil.copyfile(config["bpemodel"], target)
        config["bpemodel"] = str(target)
    if isinstance(config.get("token_list"), str):
        target = output_dir / "tokens.txt"
        shutil.copyfile(config["token_list"], target)
        config["token_list"] = str(target)


def compact_state(model: ESPnetSupernetCTCModel, compact: torch.nn.Module, blocks: Sequence[int],
                  size: int) -> Dict[str, torch.Tensor]:
    """The supernet's tensors under the compact model's names (kept blocks renumbered,
    the size's own CTC head as ``ctc``)."""
    source = model.state_dict()
    head = model.ctc_for(size).state_dict()
    state = {}
    for key in compact.state_dict():
        if key.startswith("ctc."):
            state[key] = head[key[len("ctc."):]]
        elif key.startswith("encoder.encoders."):
            index, rest = key[len("encoder.encoders."):].split(".", 1)
            state[key] = source[f"encoder.encoders.{blocks[int(index)]}.{rest}"]
        elif key in source:
            state[key] = source[key]
        else:
            raise ValueError(f"export: the compact model's '{key}' has no counterpart in the supernet")
    return {key: value.detach().clone() for key, value in state.items()}


@dataclass
class CompactModel:
    """A cut model in memory: its config, the ESPnet model with the supernet's tensors."""

    config: dict
    model: ESPnetASRModel
    blocks: List[int]
    widths: List[Dict[str, int]]
    not_stock: List[str]


def build_compact(model: ESPnetSupernetCTCModel, train_config: dict, cut: Cut,
                  force_dynamic: bool = False) -> CompactModel:
    """The cut model in memory (files the config names must exist). ``force_dynamic``
    keeps a ``dynamic_conformer`` even where a stock one would do (the ONNX export's
    encoder masks padding, so its batches equal single utterances)."""
    blocks, widths = kept_widths(model, cut)
    if not blocks:
        raise ValueError(f"export: {cut.name} removes every block; nothing to export")
    encoder_conf = train_config.get("encoder_conf") or {}
    obstacles = stock_obstacles(model, encoder_conf, blocks, widths)
    stock = not obstacles and not force_dynamic
    config = copy.deepcopy(train_config)
    config.update(
        encoder="conformer" if stock else "dynamic_conformer",
        encoder_conf=compact_encoder_conf(encoder_conf, widths, stock),
        model="espnet",
        model_conf=compact_model_conf(train_config.get("model_conf")),
        decoder=None, decoder_conf={}, specaug=None, specaug_conf={},
        init=None,
    )
    compact = ASRTask.build_model(argparse.Namespace(**copy.deepcopy(config)))
    compact.load_state_dict(compact_state(model, compact, blocks, cut.size), strict=True)
    return CompactModel(config, compact.eval(), blocks, widths, obstacles)


def export_compact(model: ESPnetSupernetCTCModel, asr_train_config: str, cut: Cut, output_dir: str,
                   asr_model_file: Optional[str] = None) -> CompactExport:
    """Write the cut model into ``output_dir`` (see the module docstring)."""
    with open(asr_train_config, encoding="utf-8") as f:
        train_config = yaml.safe_load(f)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / INFO_FILE).unlink(missing_ok=True)
    copy_referenced_files(train_config, out)
    built = build_compact(model, train_config, cut)
    config = built.config
    write_text_atomically(out / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    replace_atomically(out / MODEL_FILE, lambda tmp: torch.save(built.model.state_dict(), tmp))
    parameters = sum(p.numel() for p in built.model.parameters())
    result = CompactExport(out, cut, config["encoder"], parameters, (out / MODEL_FILE).stat().st_size,
                           tuple(built.not_stock))
    info = {
        "source": {"asr_train_config": str(asr_train_config), "asr_model_file": asr_model_file},
        "subnet": cut.size,
        "strategy": cut.strategy,
        "depth": cut.depth,
        "skip_blocks": list(cut.skip_blocks),
        "blocks": built.blocks,
        "units": sum(1 for row in built.widths for width in row.values() if width > 0),
        "encoder": result.encoder,
        "not_stock": list(built.not_stock),
        "parameters": parameters,
        "model_bytes": result.model_bytes,
    }
    write_text_atomically(out / INFO_FILE, yaml.safe_dump(info, sort_keys=False))
    return result


def export_from_files(asr_train_config: str, asr_model_file: str, output_dir: str, size: Optional[int] = None,
                      pruning_plan: Optional[str] = None, strategy: Optional[str] = None,
                      depth: Optional[int] = None) -> CompactExport:
    """Load the supernet, check the options and export (``bin/export_subnet``'s work)."""
    from espnet_dynenc.checkpoint_jobs.loading import load_model

    model, _ = load_model(asr_train_config, asr_model_file)
    cut = resolve_cut(model, size, pruning_plan, strategy, depth)
    return export_compact(model, asr_train_config, cut, output_dir, asr_model_file)


def describe(result: CompactExport) -> str:
    """One line per export for the console: what was written, its size, stock or why not."""
    line = (f"{result.output_dir}: subnet {result.cut.name}, {result.encoder} encoder, "
            f"{result.parameters} parameters, {result.model_bytes} bytes ({MODEL_FILE})")
    if result.not_stock:
        line += "\n  not ESPnet's stock conformer (needs `import espnet_dynenc`): " + "; ".join(result.not_stock)
    else:
        line += "\n  ESPnet's stock conformer: loads with ESPnet alone"
    return line
