"""The ``supernet_ctc`` side of DMAO: its checkpoint entry and what an event leaves behind.

``model_conf.dmao`` (see :class:`espnet_dynenc.reallocation.controller.DMAOConfig`) gives
the model a :class:`DMAOState` child. Its only state-dict entry, ``dmao._extra_state``,
holds the architecture, the events done and the importance scores; the model reads it
*before* loading the weights (:meth:`DMAOState.restore`), so a checkpoint taken after an
event loads into a model built from the original config (ESPnet's ``--resume``) and the
optimizer follows the rebuilt modules.

Several processes (DistributedDataParallel): the wrapper, built once by ESPnet's trainer,
keeps reducing the gradients of the tensors it was built with. After an event those are
no longer used (so training needs ``unused_parameters: true``), and the tensors the event
created are averaged across processes here instead: at the end of every backward pass,
in name order, before ESPnet clips the gradients. Every process then sees the same
gradients, scores the same groups and makes the same events.
"""
import logging
import weakref
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from espnet_dynenc.distributed import append_parameter_checksum, rank, world_size
from espnet_dynenc.model.checkpoint_entry import AveragedEntry, loadable
from espnet_dynenc.reallocation.controller import DMAOController
from espnet_dynenc.reallocation.kinds import default_group_size, group_sizes_for
from espnet_dynenc.reallocation.optimizer_state import missing_parameters
from espnet_dynenc.reallocation.report import plot_event, update_config_widths, write_architecture_yaml

STATE_KEY = "dmao._extra_state"


@loadable
class CheckpointState(AveragedEntry):
    """``dmao._extra_state`` in a checkpoint: the controller's state, in a form that
    ESPnet's ``average_nbest_models`` can average (see ``checkpoint_entry``).

    It adds to another with the same architecture and events (keeping its own scores:
    those of the best epoch) and refuses, naming both, when they differ: checkpoints from
    both sides of an event have tensors of other shapes and cannot be averaged. The model
    puts this entry first among its children, so that the refusal comes before any tensor
    shape mismatch.
    """

    dtype = "dmao-state"

    def averaging_key(self) -> Tuple[str, str]:
        return repr(self.get("block_widths")), repr(self._event_updates(self))

    def mix_error(self, other: Optional[dict]) -> str:
        return ("DMAO: cannot average checkpoints from both sides of a reallocation event (events done at updates "
                f"{self._event_updates(self)} in one, {self._event_updates(other)} in the other: their tensors "
                "have different shapes); average only epochs after the last event (fewer keep_nbest_models) or "
                "decode one epoch (valid.*.best.pth)")

    @staticmethod
    def _event_updates(state: Optional[dict]) -> list:
        return [event.get("update") for event in (state or {}).get("events", [])]


class DMAOState(torch.nn.Module):
    """Holds a model's :class:`DMAOController`; no parameters, one extra-state entry."""

    def __init__(self, encoder: torch.nn.Module, config: Mapping):
        super().__init__()
        self.controller = DMAOController(encoder, config)
        self._optimizers: List[weakref.ref] = []
        self._checked = False
        self._unsynced: Dict[str, torch.nn.Parameter] = {}  # created by events, unknown to DDP
        self._ddp_parameters: Optional[List[torch.nn.Parameter]] = None
        self._sync_hook = None
        self._sync_queued = False

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
    def get_extra_state(self) -> CheckpointState:
        return CheckpointState(self.controller.state_dict())

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
        if world_size() > 1 and self._ddp_parameters is None and update in self.controller.config.event_updates:
            # Before this process's first event: what ESPnet's DDP wrapper was built with.
            self._ddp_parameters = list(model.parameters())
        record = self.controller.after_step(update, [optimizer], model.parameters)
        if record is not None:
            if world_size() > 1:
                self._track_new_parameters(model)
            self.write_report(report_dir, plots=True)
        if self.controller.config.log_parameter_checksums and report_dir is not None:
            append_parameter_checksum(Path(report_dir) / "dmao_checksums", update, model)

    # ------------------------------------------------------------------ several processes
    def _track_new_parameters(self, model: torch.nn.Module) -> None:
        """Remember the tensors the DDP wrapper does not know; average their gradients from now on."""
        known = {id(p) for p in self._ddp_parameters}
        self._unsynced = {name: p for name, p in model.named_parameters() if id(p) not in known}
        if self._sync_hook is None:
            # The input layer's weight takes part in every backward pass of every process.
            anchor = next(model.encoder.parameters())
            self._sync_hook = anchor.register_post_accumulate_grad_hook(self._queue_sync)

    def _queue_sync(self, _param) -> None:
        if not self._sync_queued and self._unsynced:
            self._sync_queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._average_new_gradients)

    def _average_new_gradients(self) -> None:
        """All-reduce (mean) the gradients of the event-made tensors, the same order everywhere."""
        self._sync_queued = False
        world = world_size()
        for name in sorted(self._unsynced):
            param = self._unsynced[name]
            if param.grad is None:
                param.grad = torch.zeros_like(param)  # this process skipped the module
            torch.distributed.all_reduce(param.grad)
            param.grad.div_(world)

    def write_report(self, report_dir: Optional[Path], plots: bool) -> None:
        """architecture.yaml, config.yaml's block_widths and, with ``plots``, the plot of the
        latest event (rank 0)."""
        if report_dir is None or rank() != 0:
            return
        report_dir = Path(report_dir)
        widths = self.controller.encoder.block_widths
        write_architecture_yaml(report_dir, widths, self.controller.events)
        update_config_widths(report_dir / "config.yaml", widths)
        events = self.controller.events
        if plots and events:
            plot_event(report_dir / f"architecture_event{len(events)}.png", events[-1], self.group_size_by_module())

    def group_size_by_module(self) -> Dict[str, int]:
        encoder = self.controller.encoder
        d_model = encoder.output_size()
        sizes = {}
        for spec in encoder.encoders[0].units:
            override = group_sizes_for(self.controller.config.group_sizes, spec.kind)
            sizes[spec.module_name] = override or default_group_size(spec.kind, d_model)
        return sizes
