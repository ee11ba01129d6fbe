"""ESPnet's trainer with each n-best checkpoint average made from unaltered epochs.

ESPnet 202511's ``espnet2.main_funcs.average_nbest_models`` loads each epoch's state dict
once for all the ``best_model_criterion`` entries, starts an average from that cached dict
itself (``avg = states``) and adds and divides in place. A criterion whose best epochs
include the first epoch of an earlier criterion then averages the earlier average instead
of that epoch: in a supernet with one criterion per size, the larger sizes' and the full
size's ``valid.<criterion>.ave_<n>best.pth`` are wrong (measured on the embedded recipe:
off by up to 0.02 per weight, 0.4-0.5 WER points worse than the true average), while a model
with one criterion is right.

:class:`AveragingTrainer` runs ESPnet's trainer unchanged and then, on the process that
writes the checkpoints, calls ESPnet's own ``average_nbest_models`` once per criterion
(:func:`average_each_criterion`): each call has a fresh cache, so each average is ESPnet's
averaging of the epochs themselves, written to the same files. The averages are thus made
twice (ESPnet's, then these), once at the end of a training. ESPnet refuses
``--use_deepspeed`` with a trainer other than its own, so DeepSpeed training is not offered.
"""
import logging
from pathlib import Path
from typing import Sequence, Union

import torch
from espnet2.train.trainer import Trainer

CHECKPOINT = "checkpoint.pth"  # ESPnet's resumable state, with the reporter's statistics


def average_each_criterion(output_dir: Path, best_model_criterion: Sequence[Sequence[str]],
                           nbest: Union[int, Sequence[int]]) -> bool:
    """Write each criterion's n-best averages again, one criterion per call of ESPnet's
    ``average_nbest_models``, from the epochs that ``checkpoint.pth``'s reporter ranks best.

    Returns False (nothing written) with fewer than two criteria, where ESPnet's averages
    are right, or without ``checkpoint.pth``.
    """
    from espnet2.main_funcs.average_nbest_models import average_nbest_models
    from espnet2.train.reporter import Reporter

    checkpoint = Path(output_dir) / CHECKPOINT
    if len(best_model_criterion) < 2 or not checkpoint.is_file():
        return False
    reporter = Reporter()
    reporter.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"])
    for criterion in best_model_criterion:
        average_nbest_models(output_dir=Path(output_dir), reporter=reporter, best_model_criterion=[criterion],
                             nbest=nbest)
    logging.info(f"averaged again one criterion at a time (espnet_dynenc.checkpoint_averaging): "
                 f"{', '.join('.'.join(c[:2]) for c in best_model_criterion)}")
    return True


class AveragingTrainer(Trainer):
    """ESPnet's ``Trainer``; after its run, the n-best averages of every criterion are made
    again from the epochs themselves (see the module docstring)."""

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        options, distributed = kwargs["trainer_options"], kwargs["distributed_option"]
        if distributed.distributed and distributed.dist_rank != 0:
            return
        average_each_criterion(Path(options.output_dir), options.best_model_criterion, options.keep_nbest_models)
