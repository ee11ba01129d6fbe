"""A trained ESPnet ASR model as its owner hands it over: files, training config, tensors.

ESPnet leaves a trained model in one of two forms: an experiment directory (the
``config.yaml`` the trainer wrote, checkpoints beside it) or the zip that ``espnet2.bin.pack
asr`` makes of it. Both carry the token list inside the config, and the config names the
statistics and BPE files the model was trained with. Everything here names the option and
the file a problem comes from, because the user typed them.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import torch
import yaml

from espnet_dynenc.decode.token_lists import config_token_list
from espnet_dynenc.registration import load_asr_task

load_asr_task()  # a supernet checkpoint's own entries unpickle only once their classes are known

CONFIG_FILE = "config.yaml"
# the encoders whose state dict fits dynamic_conformer (ESPnet's Conformer and this package's)
CONFORMER_ENCODERS = ("conformer", "dynamic_conformer")


@dataclass(frozen=True)
class ModelFiles:
    """Where a trained model's config and checkpoint are (unpacked, for a zip)."""

    config: Path
    model: Path
    packed: Optional[Path] = None  # the zip they were unpacked from

    @property
    def name(self) -> str:
        """What the user gave, for messages: the zip, else the checkpoint."""
        return str(self.packed or self.model)


def read_config(path: os.PathLike, option: str) -> dict:
    """A training config as a dict; a missing or unreadable file is named with ``option``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option}: no such file: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as error:
        raise ValueError(f"{option}: {path} is not YAML ({error})") from error
    if not isinstance(config, dict):
        raise ValueError(f"{option}: {path} is not a training config (a YAML mapping)")
    return config


def unpack_model(packed: os.PathLike, into: os.PathLike, option: str = "--packed_model") -> ModelFiles:
    """Unpack an ``espnet2.bin.pack asr`` zip into ``into`` (ESPnet's ``unpack``, which
    points the config's file names at the unpacked copies)."""
    from espnet2.main_funcs.pack_funcs import unpack

    packed = Path(packed)
    if not packed.is_file():
        raise FileNotFoundError(f"{option}: no such file: {packed}")
    try:
        files = unpack(packed, into, use_cache=False)
    except Exception as error:  # tarfile/zipfile errors, a missing meta.yaml (RuntimeError)
        raise ValueError(f"{option}: {packed} is not a model packed by `espnet2.bin.pack asr` ({error})") from error
    missing = [key for key in ("asr_train_config", "asr_model_file") if key not in files]
    if missing:
        raise ValueError(f"{option}: {packed} holds no {' or '.join(missing)} (pack it with `espnet2.bin.pack asr`)")
    return ModelFiles(Path(files["asr_train_config"]), Path(files["asr_model_file"]), packed)


def model_files(asr_train_config: Optional[str], asr_model_file: Optional[str], packed_model: Optional[str],
                unpack_dir: os.PathLike) -> ModelFiles:
    """The files of ``--asr_train_config`` + ``--asr_model_file``, or of ``--packed_model``
    unpacked into ``unpack_dir``; exactly one of the two forms."""
    if packed_model is not None:
        if asr_train_config is not None or asr_model_file is not None:
            raise ValueError("give --packed_model, or --asr_train_config with --asr_model_file, not both")
        return unpack_model(packed_model, unpack_dir)
    if asr_model_file is None:
        raise ValueError("--asr_model_file is required (or --packed_model with a zip of `espnet2.bin.pack asr`)")
    model = Path(asr_model_file)
    if not model.is_file():
        raise FileNotFoundError(f"--asr_model_file: no such file: {model}")
    if asr_train_config is None:
        config = model.parent / CONFIG_FILE
        if not config.is_file():
            raise FileNotFoundError(f"--asr_train_config: no {CONFIG_FILE} beside {model}; give the model's "
                                    "training config")
    else:
        config = Path(asr_train_config)
        if not config.is_file():
            raise FileNotFoundError(f"--asr_train_config: no such file: {config}")
    return ModelFiles(config, model)


def load_state(model_file: os.PathLike, option: str) -> Dict[str, object]:
    """A checkpoint's state dict (a DeepSpeed ``module`` entry unwrapped, as ESPnet does)."""
    try:
        state = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors, a zip that is no checkpoint, a truncated file
        raise ValueError(f"{option}: {model_file} is not a PyTorch checkpoint of a model ({error})") from error
    if isinstance(state, dict) and isinstance(state.get("module"), dict):
        state = state["module"]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{option}: {model_file} holds no state dict")
    return state


def encoder_name(config: dict) -> str:
    """The ``encoder`` of a training config (ESPnet's default when it names none)."""
    return str(config.get("encoder") or "rnn")


def check_conformer(config: dict, config_file: os.PathLike, option: str) -> None:
    """Refuse a model whose encoder is not a Conformer: its tensors do not fit dynamic_conformer."""
    name = encoder_name(config)
    if name not in CONFORMER_ENCODERS:
        raise ValueError(
            f"{option}: the model's encoder is '{name}' ({config_file}), not a Conformer; only "
            f"{' or '.join(CONFORMER_ENCODERS)} weights fit dynamic_conformer (start from a Conformer model)")


def token_list(config_file: os.PathLike, option: str) -> list:
    """The tokens of a trained model's config (the list itself, or the file it names)."""
    try:
        return config_token_list(config_file)
    except (OSError, ValueError) as error:
        raise ValueError(f"{option}: {error}") from error
