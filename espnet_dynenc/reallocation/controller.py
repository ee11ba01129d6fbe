"""DMAO during training: score groups from the training gradients, reallocate at set updates.

Xu et al., "DMAO", Interspeech 2025 (arXiv 2506.13180). The model calls
:meth:`DMAOController.before_step` from an optimizer step pre-hook (the gradients of the
update are final and, under ESPnet's AMP, already unscaled) and :meth:`after_step` from
the post-hook. Every ``score_interval`` updates, and at the update of an event, the
importance tracker folds that update's gradients into its EMA; after the step of an
event update, the encoder is reallocated and the optimizer's parameter groups are
edited in place (:mod:`espnet_dynenc.reallocation.optimizer_state`).

The controller's state (events done, scores, the architecture) goes into the model's
checkpoint; :meth:`rebuild` gives a freshly built model the checkpoint's architecture
before its weights are loaded.
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import torch

from espnet_dynenc.reallocation.groups import num_groups
from espnet_dynenc.reallocation.importance import METHODS, ImportanceTracker
from espnet_dynenc.reallocation.kinds import group_sizes_for, resolve_group_size
from espnet_dynenc.reallocation.optimizer_state import replace_parameters
from espnet_dynenc.reallocation.reallocate import (
    DropoutReference,
    dropout_reference_from,
    reallocate,
    rescaled_dropouts,
    set_output_dropouts,
)
from espnet_dynenc.reallocation.rebuild import apply_architecture

OPTIMIZER_STATE = ("gather", "reset")


@dataclass
class DMAOConfig:
    """``model_conf.dmao`` in a training config.

    Attributes:
        event_updates: updates after which an event runs (DMAO: one, at 15% of training).
        rho: share of the prunable parameters moved per event (LibriSpeech 0.15, TED-LIUM 0.2).
        score_interval: the scores take in an update's gradients every this many updates
            (and at every event update). DMAO: 1000.
        method: ``taylor`` (DMAO), ``gradient`` or ``weight``.
        smoothing: weight of the old score in the EMA (DMAO: 0.1).
        optimizer_state: ``gather`` (copies inherit their source's Adam moments) or ``reset``.
        noise_std: Gaussian noise on the copies of a group.
        rescale_dropout: a resized module's dropouts follow its width (p * groups / default):
            FFN hidden and output, attention weights and output, convolution output.
        group_sizes: ``{ffn|mhsa|conv: size}`` overrides of DMAO's group sizes.
        seed: seed of the copy noise.
        log_parameter_checksums: every process appends ``<update> <parameters> <sum>`` after
            each update to ``dmao_checksums.rank<r>.txt`` in the experiment dir (to check
            that several processes stay identical across events).
    """

    event_updates: List[int] = field(default_factory=list)
    rho: float = 0.15
    score_interval: int = 1000
    method: str = "taylor"
    smoothing: float = 0.1
    optimizer_state: str = "gather"
    noise_std: float = 0.0
    rescale_dropout: bool = True
    group_sizes: Optional[Dict[str, int]] = None
    seed: int = 0
    log_parameter_checksums: bool = False

    def __post_init__(self):
        events = list(self.event_updates)
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in events) or sorted(set(events)) != events:
            raise ValueError(f"model_conf.dmao.event_updates must be increasing update numbers >= 1, got {events}")
        if not 0.0 < self.rho < 1.0:
            raise ValueError(f"model_conf.dmao.rho must be in (0, 1), got {self.rho}")
        if isinstance(self.score_interval, bool) or not isinstance(self.score_interval, int) or self.score_interval < 1:
            raise ValueError(f"model_conf.dmao.score_interval must be an int >= 1, got {self.score_interval}")
        if self.method not in METHODS:
            raise ValueError(f"model_conf.dmao.method must be one of {METHODS}, got '{self.method}'")
        if self.optimizer_state not in OPTIMIZER_STATE:
            raise ValueError(f"model_conf.dmao.optimizer_state must be one of {OPTIMIZER_STATE}, "
                             f"got '{self.optimizer_state}'")
        if self.noise_std < 0:
            raise ValueError(f"model_conf.dmao.noise_std must be >= 0, got {self.noise_std}")
        group_sizes_for(self.group_sizes, "ffn")  # validates the kinds


class DMAOController:
    """Importance tracking and reallocation events of one encoder during training.

    Args:
        encoder: the model's ``DynamicConformerEncoder`` (rebuilt in place by events).
        config: a :class:`DMAOConfig` or its dict (``model_conf.dmao``).
    """

    def __init__(self, encoder: torch.nn.Module, config):
        self.config = config if isinstance(config, DMAOConfig) else DMAOConfig(**dict(config))
        self.encoder = encoder
        self._check_group_sizes()
        self.tracker = ImportanceTracker(encoder, self.config.method, self.config.group_sizes, self.config.smoothing)
        self.dropout_reference = self._dropout_reference()
        self.events: List[dict] = []  # one record per event done: update, summary, seconds
        self.scoring_seconds = 0.0
        self.event_seconds = 0.0

    def _check_group_sizes(self) -> None:
        """Every module must split into whole groups; say which one does not, at build time."""
        for b, block in enumerate(self.encoder.encoders):
            for spec in block.units:
                module = getattr(block, spec.module_name)
                if module is None:
                    continue
                try:
                    resolve_group_size(module, group_sizes_for(self.config.group_sizes, spec.kind))
                except ValueError as error:
                    raise ValueError(f"model_conf.dmao: block {b} '{spec.module_name}': {error} (set "
                                     f"model_conf.dmao.group_sizes.{spec.kind} or change the encoder's width)") from None

    def _dropout_reference(self):
        if not self.config.rescale_dropout:
            return None
        try:
            return dropout_reference_from(self.encoder, self.config.group_sizes)
        except ValueError:
            # Built from a config that already holds a reallocated architecture (inference):
            # dropout is off there, and a resumed run restores the reference from its checkpoint.
            return None

    # ------------------------------------------------------------------ training hooks
    @property
    def done_updates(self) -> List[int]:
        return [event["update"] for event in self.events]

    def before_step(self, update: int) -> None:
        """Fold update ``update``'s gradients into the scores when it is due."""
        pending = update in self.config.event_updates and update not in self.done_updates
        if update % self.config.score_interval == 0 or pending:
            start = time.perf_counter()
            self.tracker.update()
            self.scoring_seconds += time.perf_counter() - start

    def after_step(self, update: int, optimizers: Sequence[torch.optim.Optimizer],
                   live_parameters) -> Optional[dict]:
        """Run the event of update ``update`` if there is one; returns its record."""
        if update not in self.config.event_updates or update in self.done_updates:
            return None
        return self.run_event(update, optimizers, live_parameters)

    def run_event(self, update: int, optimizers: Sequence[torch.optim.Optimizer], live_parameters) -> dict:
        if not self.tracker.scores:
            raise RuntimeError(f"DMAO event at update {update}: no importance scores were measured")
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(self.config.seed + update)
        _, summary, changes = reallocate(
            self.encoder, self.tracker.scores, self.config.rho, self.config.group_sizes,
            noise_std=self.config.noise_std, generator=generator, dropout_reference=self.dropout_reference,
        )
        live = list(live_parameters())
        for optimizer in optimizers:
            replace_parameters(optimizer, changes, live, carry_state=self.config.optimizer_state == "gather")
        self.tracker.reset()
        seconds = time.perf_counter() - start
        self.event_seconds += seconds
        record = {"update": update, "seconds": round(seconds, 4), **summary.as_dict()}
        self.events.append(record)
        logging.info("DMAO event at update %d: moved %d of %d prunable parameters (rho %.2f), %d groups dropped, "
                     "%d copied, parameter change %+d, %.3f s", update, summary.removed_params,
                     summary.prunable_params, summary.rho, len(summary.dropped), len(summary.grown),
                     summary.param_change, seconds)
        return record

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {
            "block_widths": [dict(widths) for widths in self.encoder.block_widths],
            "events": self.events,
            "tracker": self.tracker.state_dict(),
            "dropout_reference": {k: v.as_dict() for k, v in (self.dropout_reference or {}).items()},
            "scoring_seconds": self.scoring_seconds,
            "event_seconds": self.event_seconds,
        }

    def load_state_dict(self, state: Mapping, optimizers: Sequence[torch.optim.Optimizer], live_parameters) -> bool:
        """Restore; rebuilds the encoder first when the checkpoint's architecture differs.
        Returns whether the architecture changed."""
        self.dropout_reference = {k: DropoutReference.from_state(v)
                                  for k, v in state["dropout_reference"].items()} or None
        changed = self.rebuild(state["block_widths"], optimizers, live_parameters)
        self.events = [dict(event) for event in state["events"]]
        self.tracker.load_state_dict(state["tracker"])
        self.scoring_seconds = float(state.get("scoring_seconds", 0.0))
        self.event_seconds = float(state.get("event_seconds", 0.0))
        return changed

    def rebuild(self, block_widths: Sequence[Mapping[str, int]], optimizers: Sequence[torch.optim.Optimizer],
                live_parameters) -> bool:
        """Give the encoder ``block_widths`` (weights to be loaded afterwards)."""
        if len(block_widths) != self.encoder.num_blocks:
            raise ValueError(f"DMAO checkpoint: {len(block_widths)} blocks, the encoder has {self.encoder.num_blocks}")
        index_lists, groups = [], {}
        for b, (block, target) in enumerate(zip(self.encoder.encoders, block_widths)):
            lists = {}
            for spec in block.units:
                want = int(target.get(spec.module_name, 0))
                if want == self.encoder.block_widths[b][spec.module_name]:
                    continue
                module = getattr(block, spec.module_name)
                if module is None:
                    raise ValueError(f"DMAO checkpoint: block {b} '{spec.module_name}' has width {want}, but this "
                                     "encoder has none to build it from; build the model from the training config")
                size = resolve_group_size(module, group_sizes_for(self.config.group_sizes, spec.kind))
                have = num_groups(module, size)
                lists[spec.module_name] = [g % have for g in range(want // size)]
                groups[(b, spec.module_name)] = want // size
            index_lists.append(lists)
        if not any(index_lists):
            return False
        internal, output = rescaled_dropouts(self.encoder, groups, self.dropout_reference)
        changes = apply_architecture(self.encoder, index_lists, group_sizes=self.config.group_sizes,
                                     dropout_rates=internal)
        set_output_dropouts(self.encoder, output)
        live = list(live_parameters())
        for optimizer in optimizers:
            replace_parameters(optimizer, changes, live, carry_state=False)
        return True
