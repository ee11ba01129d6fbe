"""ESPnet's ASR task with one addition for training: the model learns its experiment dir
and, for DMAO, its optimizers.

``supernet_ctc`` writes ``subnets.yaml``, its plots and the selection-score history into
the experiment directory; ESPnet's trainer does not tell models where that is, so the
optimizer builder (called once, in training only) hands it over. A DMAO model also gets
the optimizers, which it edits when a checkpoint (``--resume``) rebuilds the encoder, and
settings that would break a DMAO run are refused here, before training starts.
"""
from pathlib import Path


from espnet2.tasks.asr import ASRTask

from espnet_dynenc.distributed import world_size
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel


class DynEncASRTask(ASRTask):
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
    """Refuse what would break a DMAO run: averaging across events; several processes without
    ``unused_parameters`` (the DDP wrapper's replaced tensors get no gradients after an event)."""
    keep = args.keep_nbest_models if isinstance(args.keep_nbest_models, list) else [args.keep_nbest_models]
    if max(keep) > 1 and model_events(args):
        raise ValueError(
            f"model_conf.dmao: keep_nbest_models {args.keep_nbest_models} would average checkpoints, and checkpoints "
            "on both sides of a reallocation event have different shapes; set keep_nbest_models: 1 (the best "
            "epoch is decoded)")
    if world_size() > 1 and not args.unused_parameters:
        raise ValueError(
            "model_conf.dmao with several processes: after an event the DistributedDataParallel wrapper still "
            "holds the replaced tensors, which no longer get gradients; set unused_parameters: true")


def model_events(args) -> list:
    return list(((getattr(args, "model_conf", None) or {}).get("dmao") or {}).get("event_updates") or [])
