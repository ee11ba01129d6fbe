"""A trained model (``config.yaml`` + ``.pth``) and its data, read the way ESPnet's inference does.

Every tool that looks at a trained model (the greedy and the beam decoder, pruning on
demand, SVCCA, the exporters) loads it here, so a missing file or a model of the wrong
kind gets the same message naming the option everywhere; and every tool that feeds it a
data set builds ESPnet's iterator here, so the features, tokens and padding are those of
the training config in each of them.
"""
from pathlib import Path
from typing import Optional, Sequence, Tuple

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


def build_inference_iterator(train_args, data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                             batch_size: int, key_file: Optional[str] = None, num_workers: int = 0,
                             dtype: str = "float32", with_text: bool = False, extra_streams: bool = False):
    """ESPnet's streaming iterator over a data set, in file order, as ``(keys, batch)`` pairs.

    The training config (``train_args``) gives the preprocessor (features, tokenizer) and
    the collate function, as in ESPnet's ``asr_inference``.

    Args:
        data_path_and_name_and_type: ``(path, name, type)`` per stream, e.g.
            ``("dump/raw/dev/wav.scp", "speech", "sound")``.
        with_text: ``text`` is read and tokenised too (ESPnet then checks the streams as
            for training, where ``text`` is required).
        extra_streams: streams beyond the task's own are read and left unused; without
            it ESPnet refuses a stream name it does not know.
    """
    return ASRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype=dtype,
        batch_size=batch_size,
        key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=ASRTask.build_preprocess_fn(train_args, False),
        collate_fn=ASRTask.build_collate_fn(train_args, False),
        allow_variable_data_keys=extra_streams,
        inference=not with_text,
    )
