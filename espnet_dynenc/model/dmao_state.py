"""The ``supernet_ctc`` side of DMAO: its checkpoint entry and what an event leaves behind.

``model_conf.dmao`` (see :class:`espnet_dynenc.reallocation.controller.DMAOConfig`) gives
the model a :class:`DMAOState` child. Its only state-dict entry, ``dmao._extra_state``,
holds the architecture, the events done and the importance scores; the model reads it
*before* loading the weights (:meth:`DMAOState.restore`), so a checkpoint taken after an
event loads into a model built from the original config (ESPnet's ``--resume``) and the
optimizer follows the rebuilt modules.
"""
import logging
import weakref
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import torch

from espnet_dynenc.reallocation.controller import DMAOController
from espnet_dynenc.reallocation.groups import default_group_size, group_sizes_for
from espnet_dynenc.reallocation.optimizer_state import missing_parameters
from espnet_dynenc.reallocation.report import plot_event, update_config_widths, write_architecture_yaml

STATE_KEY = "dmao._extra_state"


class DMAOState(torch.nn.Module):
    """Holds a model's :class:`DMAOController`; no parameters, one extra-state entry."""

    def __init__(self, encoder: torch.nn.Module, config: Mapping):
        super().__init__()
        self.controller = DMAOController(encoder, config)
        self._optimizers: List[weakref.ref] = []
        self._checked = False

    # ------------------------------------------------------------------ optimizers
    def attach_optimizers(self, optimizers) -> None:
        """The optimizers to edit when a checkpoint rebuilds the encoder (set before resuming)."""
        self._optimizers = [weakref.ref(o) for o in optimizers]

    def optimizers(self) -> List[torch.optim.Optimizer]:
        return [o for o in (ref() for ref in self._optimizers) if o is not None]

    def check_optimizer(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> None:
        """Once: the optimizer must update every trainable parameter (after a rebuild too)."""
        if self._checked:
            return
        missing = missing_parameters(optimizer, model)
        if missing:
            raise RuntimeError(
                f"DMAO: the optimizer does not update {len(missing)} parameters of the rebuilt encoder "
                f"(e.g. {missing[0]}); train with espnet_dynenc.bin.asr_train, which hands the optimizers "
                "to the model before a checkpoint is loaded")
        self._checked = True

    # ------------------------------------------------------------------ checkpoints
    def get_extra_state(self) -> Dict:
        return self.controller.state_dict()

    def set_extra_state(self, state) -> None:
        """Applied by :meth:`restore` before the weights are loaded; nothing left to do."""

    def restore(self, state_dict: Mapping, model: torch.nn.Module) -> None:
        if STATE_KEY not in state_dict:
            return
        if self.controller.load_state_dict(state_dict[STATE_KEY], self.optimizers(), model.parameters):
            logging.info("DMAO: encoder rebuilt with the checkpoint's architecture (%d event(s) done)",
                         len(self.controller.events))
            self._checked = False
            self.write_report(getattr(model, "report_dir", None), plots=False)

    # ------------------------------------------------------------------ training
    def before_step(self, update: int) -> None:
        self.controller.before_step(update)

    def after_step(self, update: int, optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                   report_dir: Optional[Path]) -> None:
        record = self.controller.after_step(update, [optimizer], model.parameters)
        if record is not None:
            self.write_report(report_dir, plots=True)

    def write_report(self, report_dir: Optional[Path], plots: bool) -> None:
        """architecture.yaml, the event plots and config.yaml's block_widths (rank 0)."""
        if report_dir is None or _rank() != 0:
            return
        report_dir = Path(report_dir)
        widths = self.controller.encoder.block_widths
        write_architecture_yaml(report_dir, widths, self.controller.events)
        update_config_widths(report_dir / "config.yaml", widths)
        if plots:
            sizes = self.group_size_by_module()
            for k, event in enumerate(self.controller.events, 1):
                plot_event(report_dir / f"architecture_event{k}.png", event, sizes)

    def group_size_by_module(self) -> Dict[str, int]:
        encoder = self.controller.encoder
        d_model = encoder.output_size()
        sizes = {}
        for spec in encoder.encoders[0].units:
            override = group_sizes_for(self.controller.config.group_sizes, spec.kind)
            sizes[spec.module_name] = override or default_group_size(spec.kind, d_model)
        return sizes


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0
