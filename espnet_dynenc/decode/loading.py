"""A trained model from ``config.yaml`` and a ``.pth``, built the way ESPnet's inference does.

Every tool that looks at a trained model (the greedy decoder, pruning on demand, SVCCA,
the exporters) loads it here, so a missing file or a model of the wrong kind gets the
same message naming the option everywhere.
"""
from pathlib import Path
from typing import Tuple

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc before ESPnet reads the config

from espnet2.asr.espnet_model import ESPnetASRModel  # noqa: E402
from espnet2.tasks.asr import ASRTask  # noqa: E402

from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel  # noqa: E402


def check_model_files(config: str, model_file: str) -> None:
    """Both files exist; the message names the option of the missing one."""
    for option, path in (("--asr_train_config", config), ("--asr_model_file", model_file)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{option}: no such file: {path}")


def load_model(config: str, model_file: str, device: str = "cpu") -> Tuple[ESPnetSupernetCTCModel, object]:
    """(``supernet_ctc`` model in eval mode, training args); another model type is refused."""
    check_model_files(config, model_file)
    model, train_args = ASRTask.build_model_from_file(config, model_file, device)
    if not isinstance(model, ESPnetSupernetCTCModel):
        raise ValueError(f"--asr_train_config: {config} builds {type(model).__name__}, expected model: supernet_ctc")
    return model.eval(), train_args


def load_ctc_model(config: str, model_file: str, device: str = "cpu") -> Tuple[ESPnetASRModel, object]:
    """(model in eval mode, training args) for a ``supernet_ctc`` model or a one-size ESPnet
    CTC model (an exported size); a model without a CTC head is refused."""
    check_model_files(config, model_file)
    model, train_args = ASRTask.build_model_from_file(config, model_file, device)
    if not isinstance(model, ESPnetASRModel) or getattr(model, "ctc", None) is None:
        raise ValueError(f"--asr_train_config: {config} builds {type(model).__name__}, expected a CTC model")
    return model.eval(), train_args
