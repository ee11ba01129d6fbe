"""A small dev set, loaded the way ESPnet's inference does, and the options that go with it.

Pruning on demand (Lee et al., Interspeech 2021) and its SVCCA analysis both look at a
trained model (loaded by ``loading``) on a few hundred dev utterances, held in memory
because every candidate removal set is scored on the same batches.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from espnet_dynenc.checkpoint_jobs.loading import build_inference_iterator


def check_svcca_options(max_frames: int, variance_kept: float) -> None:
    """``--max_frames`` and ``--variance_kept`` of the SVCCA tools, checked before any loading."""
    if max_frames < 0:
        raise ValueError(f"--max_frames: must be >= 0, got {max_frames}")
    if not 0.0 < variance_kept <= 1.0:
        raise ValueError(f"--variance_kept: must be in (0, 1], got {variance_kept}")


def check_subnet(model, size: Optional[int]) -> int:
    """The subnet size to analyse (None: the supernet); an unknown size names the option."""
    if size is None:
        return model.supernet_size
    if size not in model.subnet_sizes:
        raise ValueError(f"--subnet: {size} is not one of this model's sizes {model.subnet_sizes}")
    return size


def load_dev_batches(train_args, data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
                     key_file: Optional[str], batch_size: int, max_utterances: Optional[int],
                     with_text: bool, num_workers: int = 0) -> List[Tuple[torch.Tensor, ...]]:
    """Up to ``max_utterances`` utterances (None: all) in ESPnet's batches, in file order.

    Each batch is (speech, speech_lengths) or, ``with_text``, (speech, speech_lengths,
    text, text_lengths) with the text tokenised by the training config's preprocessor.
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size: must be >= 1, got {batch_size}")
    if max_utterances is not None and max_utterances < 1:
        raise ValueError(f"--max_utterances: must be >= 1, got {max_utterances}")
    names = {name for _, name, _ in data_path_and_name_and_type}
    needed = {"speech", "text"} if with_text else {"speech"}
    if not needed <= names:
        raise ValueError(f"--data_path_and_name_and_type: needs {sorted(needed)}, got {sorted(names)}")
    # Extra streams (e.g. text given to the SVCCA tool) are simply not used.
    loader = build_inference_iterator(train_args, data_path_and_name_and_type, batch_size, key_file,
                                      num_workers, with_text=with_text, extra_streams=True)
    keys = ("speech", "speech_lengths", "text", "text_lengths") if with_text else ("speech", "speech_lengths")
    batches: List[Tuple[torch.Tensor, ...]] = []
    taken = 0
    for utt_ids, batch in loader:
        remaining = len(utt_ids) if max_utterances is None else min(len(utt_ids), max_utterances - taken)
        batches.append(tuple(batch[key][:remaining] for key in keys))
        taken += remaining
        if max_utterances is not None and taken >= max_utterances:
            break
    if not batches:
        raise ValueError("--data_path_and_name_and_type: the data set is empty")
    return batches
