"""ESPnet's ASR task with two additions for training: the model learns its experiment dir
and, for DMAO, its optimizers; and every training process ends by closing its process group.

``supernet_ctc`` writes ``subnets.yaml``, its plots and the selection-score history into
the experiment directory; ESPnet's trainer does not tell models where that is, so the
optimizer builder (called once, in training only) hands it over. A DMAO model also gets
the optimizers, which it edits when a checkpoint (``--resume``) rebuilds the encoder, and
settings that would break a DMAO run are refused here, before training starts; so is,
for a DES selector, averaging more checkpoints than epochs end after the switch. A model
whose subnets start at a fraction of the training learns the training's number of updates.
Its trainer makes every n-best average again one ``best_model_criterion`` at a time
(``espnet_dynenc.checkpoint_averaging``: ESPnet's averages of several criteria can be wrong).

``main_worker`` is what every training process runs, whether the launcher started it
directly (one process per host) or ESPnet spawned it (one per GPU): each one prepares,
and after a successful run performs, the teardown that ``espnet_dynenc.distributed``
explains, so no gloo thread can abort the exit of a finished training.
"""
import logging
import math
from pathlib import Path
from typing import Optional

from espnet2.tasks.asr import ASRTask

from espnet_dynenc.checkpoint_averaging import AveragingTrainer
from espnet_dynenc.distributed import close_process_group, prepare_process_group_teardown, world_size
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel


class DynEncASRTask(ASRTask):
    # ESPnet's trainer, whose n-best averages are made again one criterion at a time (a model
    # of several sizes has one criterion per size; see espnet_dynenc.checkpoint_averaging)
    trainer = AveragingTrainer

    @classmethod
    def main_worker(cls, args):
        prepare_process_group_teardown()  # before ESPnet creates the process group
        super().main_worker(args)
        close_process_group()

    @classmethod
    def build_optimizers(cls, args, model):
        optimizers = super().build_optimizers(args, model)
        if isinstance(model, ESPnetSupernetCTCModel) and getattr(args, "output_dir", None):
            model.report_dir = Path(args.output_dir)
        if isinstance(model, ESPnetSupernetCTCModel) and model.des.config.subnet_start_fraction is not None:
            model.des.set_training_updates(training_updates(args))
        if isinstance(model, ESPnetSupernetCTCModel) and model.selector is not None:
            check_des_training(args, model.selector.step1_updates)
        if isinstance(model, ESPnetSupernetCTCModel) and model.dmao is not None:
            check_dmao_training(args)
            model.dmao.attach_optimizers(optimizers)
        return optimizers


def check_dmao_training(args) -> None:
    """Refuse what would break a DMAO run: averaging more checkpoints than come after the
    last event (checkpoints on both sides of an event have different shapes); several
    processes without ``unused_parameters`` (the DDP wrapper's replaced tensors get no
    gradients after an event)."""
    keep = max(keep_nbest(args))
    events = model_events(args)
    per_epoch = updates_per_epoch(args)
    if keep > 1 and events and per_epoch:
        after = epochs_ending_after(max(events), per_epoch, args.max_epoch)
        if keep > after:
            raise ValueError(
                f"model_conf.dmao: keep_nbest_models {args.keep_nbest_models} would average {keep} checkpoints, "
                f"but only {after} of the {args.max_epoch} epochs end after the last event (update "
                f"{max(events)}, {per_epoch} updates per epoch); checkpoints on both sides of an event have different "
                f"shapes. Set keep_nbest_models to at most {max(after, 1)}")
    if world_size() > 1 and not args.unused_parameters:
        raise ValueError(
            "model_conf.dmao with several processes: after an event the DistributedDataParallel wrapper still "
            "holds the replaced tensors, which no longer get gradients; set unused_parameters: true")


def check_des_training(args, switch_update: int) -> None:
    """Refuse averaging more checkpoints than come after the switch to Step 2 (after
    ``switch_update`` = ``selector.step1_updates`` updates): Step-1 checkpoints hold other
    ``subnet_masks``, and ESPnet's average of the bool masks is their union. The averaging
    itself refuses such a mix too (see ``des_state.MaskState``), but only after training."""
    keep = max(keep_nbest(args))
    if keep <= 1:
        return
    per_epoch = updates_per_epoch(args)
    if not per_epoch:
        logging.warning("model_conf.selector: without num_iters_per_epoch the epochs that end after the switch "
                        "(update %d) are not known before training; averaging %d checkpoints stops if one of them "
                        "is from Step 1", switch_update, keep)
        return
    after = epochs_ending_after(switch_update, per_epoch, args.max_epoch)
    if keep > after:
        needed = max(1, math.ceil(switch_update / per_epoch)) + keep - 1  # the epochs up to the switch, then keep
        raise ValueError(
            f"model_conf.selector: keep_nbest_models {args.keep_nbest_models} would average {keep} checkpoints, "
            f"but only {after} of the {args.max_epoch} epochs end after the switch to Step 2 (after update "
            f"{switch_update}, the selector's step1_updates; {per_epoch} updates per epoch); Step-1 checkpoints "
            f"have other subnet_masks and averaging them gives each size the union of its masks. Set "
            f"keep_nbest_models to at most {max(after, 1)}, or max_epoch to at least {needed}")


def training_updates(args) -> int:
    """The optimizer updates of the whole training (``max_epoch`` epochs of
    ``num_iters_per_epoch``), for ``model_conf.subnet_start_fraction``; refused when the data
    decide the length of an epoch."""
    per_epoch = updates_per_epoch(args)
    if not per_epoch:
        raise ValueError(
            "model_conf.subnet_start_fraction needs the number of training updates, which is known before training "
            "only with num_iters_per_epoch; set num_iters_per_epoch, or give subnet_start_update instead")
    return per_epoch * int(args.max_epoch)


def keep_nbest(args) -> list:
    """``keep_nbest_models`` as a list (ESPnet accepts one number or several)."""
    keep = args.keep_nbest_models
    return list(keep) if isinstance(keep, (list, tuple)) else [keep]


def updates_per_epoch(args) -> Optional[int]:
    """Optimizer updates in one epoch where ``num_iters_per_epoch`` fixes it (ESPnet's trainer
    steps once every ``accum_grad`` iterations); None where the data decide."""
    iters = getattr(args, "num_iters_per_epoch", None)
    if not iters:
        return None
    return iters // max(1, int(getattr(args, "accum_grad", 1) or 1))


def epochs_ending_after(update: int, per_epoch: int, max_epoch: int) -> int:
    """How many of ``max_epoch`` epochs of ``per_epoch`` updates save their checkpoint with
    update ``update`` done: epoch e ends after update e * per_epoch."""
    first = max(1, math.ceil(update / per_epoch))
    return max(0, max_epoch - first + 1)


def model_events(args) -> list:
    return list(((getattr(args, "model_conf", None) or {}).get("dmao") or {}).get("event_updates") or [])
