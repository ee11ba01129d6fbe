"""ESPnet's ASR task with one addition for training: the model learns its experiment dir
and, for DMAO, its optimizers.

``supernet_ctc`` writes ``subnets.yaml``, its plots and the selection-score history into
the experiment directory; ESPnet's trainer does not tell models where that is, so the
optimizer builder (called once, in training only) hands it over. A DMAO model also gets
the optimizers, which it edits when a checkpoint (``--resume``) rebuilds the encoder, and
two things DMAO cannot do are refused here, before training starts.
"""
from pathlib import Path

from espnet2.tasks.asr import ASRTask

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
    """Refuse what would break a DMAO run: averaging across events, several processes."""
    keep = args.keep_nbest_models if isinstance(args.keep_nbest_models, list) else [args.keep_nbest_models]
    if max(keep) > 1 and model_events(args):
        raise ValueError(
            f"model_conf.dmao: keep_nbest_models {args.keep_nbest_models} would average checkpoints, and checkpoints "
            "on both sides of a reallocation event have different shapes; set keep_nbest_models: 1 (the best "
            "epoch is decoded)")
    world_size = getattr(args, "dist_world_size", None) or 1
    if (getattr(args, "ngpu", 0) or 0) > 1 or world_size > 1:
        raise ValueError(
            "model_conf.dmao: reallocation events rebuild modules that a DistributedDataParallel wrapper would "
            "still hold; train DMAO in one process (--ngpu 0 or 1)")


def model_events(args) -> list:
    return list(((getattr(args, "model_conf", None) or {}).get("dmao") or {}).get("event_updates") or [])
