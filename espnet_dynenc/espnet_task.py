"""ESPnet's ASR task with one addition for training: the model learns its experiment dir.

``supernet_ctc`` writes ``subnets.yaml``, its plots and the selection-score history into
the experiment directory; ESPnet's trainer does not tell models where that is, so the
optimizer builder (called once, in training only) hands it over.
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
        return optimizers
