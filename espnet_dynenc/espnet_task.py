"""ESPnet's ASR task with two additions for training: the model learns its experiment dir
and, for DMAO, its optimizers; and every training process ends by closing its process group.

``supernet_ctc`` writes ``subnets.yaml``, its plots and the selection-score history into
the experiment directory; ESPnet's trainer does not tell models where that is, so the
optimizer builder (called once, in training only) hands it over. A DMAO model also gets
the optimizers, which it edits when a checkpoint (``--resume``) rebuilds the encoder, and
settings that would break a DMAO run are refused here, before training starts.

``main_worker`` is what every training process runs, whether the launcher started it
directly (one process per host) or ESPnet spawned it (one per GPU): each one prepares,
and after a successful run performs, the teardown that ``espnet_dynenc.distributed``
explains, so no gloo thread can abort the exit of a finished training.
"""
import math
from pathlib import Path

from espnet2.tasks.asr import ASRTask

from espnet_dynenc.distributed import close_process_group, prepare_process_group_teardown, world_size
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel


class DynEncASRTask(ASRTask):
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
        if isinstance(model, ESPnetSupernetCTCModel) and model.dmao is not None:
            check_dmao_training(args)
            model.dmao.attach_optimizers(optimizers)
        return optimizers


def check_dmao_training(args) -> None:
    """Refuse what would break a DMAO run: averaging more checkpoints than come after the
    last event (checkpoints on both sides of an event have different shapes); several
    processes without ``unused_parameters`` (the DDP wrapper's replaced tensors get no
    gradients after an event)."""
    keep = args.keep_nbest_models if isinstance(args.keep_nbest_models, list) else [args.keep_nbest_models]
    events = model_events(args)
    iters = getattr(args, "num_iters_per_epoch", None)
    if max(keep) > 1 and events and iters:
        after = args.max_epoch - math.ceil(max(events) / iters) + 1  # epochs whose checkpoint follows every event
        if max(keep) > after:
            raise ValueError(
                f"model_conf.dmao: keep_nbest_models {args.keep_nbest_models} would average {max(keep)} checkpoints, "
                f"but only {max(after, 0)} of the {args.max_epoch} epochs end after the last event (update "
                f"{max(events)}, {iters} updates per epoch); checkpoints on both sides of an event have different "
                f"shapes. Set keep_nbest_models to at most {max(after, 1)}")
    if world_size() > 1 and not args.unused_parameters:
        raise ValueError(
            "model_conf.dmao with several processes: after an event the DistributedDataParallel wrapper still "
            "holds the replaced tensors, which no longer get gradients; set unused_parameters: true")


def model_events(args) -> list:
    return list(((getattr(args, "model_conf", None) or {}).get("dmao") or {}).get("event_updates") or [])
