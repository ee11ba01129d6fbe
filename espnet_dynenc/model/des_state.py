"""The ``supernet_ctc`` side of Dynamic Encoder Size: which step an update is in, which
subnets it trains, and what the steps leave behind.

Xu et al., "Dynamic Encoder Size Based on Data-Driven Layer-wise Pruning for Speech
Recognition", Interspeech 2024. :class:`DESConfig` gathers the options of ``model_conf``
that define the schedule; :class:`DESState` runs it for one model:

* Step 1 (a selector learns the unit scores): the supernet and the smallest subnet
  gated by the selector, plus the selector's own loss; the score history every 1/50 of
  the step;
* the switch: the masks become the top-k of the final scores, the selector is frozen
  (its values are put back after every later update, since AdamW's decay or a DDP
  wrapper built in Step 1 would still move them);
* Step 2 (or fixed masks from the start): the sandwich rule;
* beyond the paper: the update from which the smaller subnets train, each pass's
  dropout and stochastic depth, and the size-aware weights of the subnets' losses;
* the log line at every change of state, ``subnets.yaml`` and the plots at the switch
  and after every epoch, the sandwich draws of each rank when asked for;
* in every checkpoint, a :class:`MaskState` beside the masks: ESPnet's averaging of
  checkpoints refuses a mix of masks, or of both sides of the switch.

The selector stays the model's own child (``selector.*`` in checkpoints); the masks are
the model's ``subnet_masks`` buffer. The model keeps the features, the encoding of each
subnet, the forward pass and the losses.
"""
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from espnet_dynenc.distributed import rank
from espnet_dynenc.model.checkpoint_entry import AveragedEntry, loadable
from espnet_dynenc.model.schedule import PASS_REGULARIZATIONS, SubnetPass, regularize_passes, step1_passes, step2_passes
from espnet_dynenc.model.subnet_report import append_score_history, write_subnet_report
from espnet_dynenc.model.subnets import mask_to_string
from espnet_dynenc.selection import SELECTORS
from espnet_dynenc.selection.relaxed_topk import nested_masks, top_k_units

LOSS_WEIGHTINGS = ("fixed", "size_aware")


@dataclass
class DESConfig:
    """The Dynamic Encoder Size options of ``model_conf`` (``supernet_ctc``).

    Attributes:
        supernet_loss_weight: weight of the largest subnet's CTC loss (1.0 in the paper).
        subnet_loss_weight: weight of every other subnet's CTC loss (0.3).
        selector: ``simple_topk`` or ``iterative_zero_out`` to learn the masks in Step 1
            (then ``subnet_masks`` must be left out); None keeps fixed masks.
        selector_conf: the selector's options (see ``espnet_dynenc.selection``); ``k_min``
            of ``simple_topk`` defaults to the smallest size.
        step1_stochastic_depth: row-wise stochastic depth on supernet units outside the
            current top-k during Step 1.
        sandwich_stochastic_depth: row-wise stochastic depth on supernet units outside the
            smallest subnet in Step 2 (and with fixed masks).
        log_sandwich_draws: each rank appends the sizes of every Step-2 update to
            ``sandwich_draws.rank<r>.txt`` in the experiment dir (to check multi-GPU agreement).
        subnet_loss_weighting: ``fixed`` (``subnet_loss_weight`` for every smaller subnet,
            the paper) or ``size_aware``: subnet m's CTC loss weighted by ``1 - exp(-L_m)``,
            L_m its loss per encoder frame, detached in the weight (the DES authors'
            follow-up, OrthoSoftmax 2025): a subnet that still has much to learn weighs
            about 1, one that has converged less; the supernet keeps
            ``supernet_loss_weight``. Each process weights its own batch's losses.
        pass_regularization: ``shared`` (every pass sees the configured dropout and
            stochastic depth, the paper), ``kept_fraction`` (each subnet's dropout rates
            times the fraction of units it keeps, the follow-up) or ``supernet_only``
            (dropout and stochastic depth in the supernet pass only, AlphaNet); see
            ``espnet_dynenc.model.schedule.regularize_passes``. SpecAugment stays shared.
        subnet_start_update, subnet_start_fraction: the smaller subnets train from this
            update (counted from 0), or from this fraction of the training's updates (the
            training entry point tells the model their number: it needs
            ``num_iters_per_epoch``); before it only the supernet trains (Once-for-All
            trains the full network first; DepS, ECCV 2024, starts shrinking once the full
            model is partly trained). Give at most one. A selector keeps its own schedule
            in updates and learns from the start on, so the start must come before the
            end of its Step 1.
    """

    supernet_loss_weight: float = 1.0
    subnet_loss_weight: float = 0.3
    selector: Optional[str] = None
    selector_conf: Optional[Dict] = None
    step1_stochastic_depth: float = 0.0
    sandwich_stochastic_depth: float = 0.0
    log_sandwich_draws: bool = False
    subnet_loss_weighting: str = "fixed"
    pass_regularization: str = "shared"
    subnet_start_update: int = 0
    subnet_start_fraction: Optional[float] = None

    def __post_init__(self):
        for name in ("step1_stochastic_depth", "sandwich_stochastic_depth"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"model_conf: {name} must be in [0, 1), got {rate}")
        if self.selector is None and self.selector_conf:
            raise ValueError("model_conf: selector_conf is given but no selector")
        if self.selector is not None and self.selector not in SELECTORS:
            raise ValueError(f"model_conf: selector '{self.selector}' is unknown (choose from {sorted(SELECTORS)})")
        if self.subnet_loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"model_conf: subnet_loss_weighting '{self.subnet_loss_weighting}' is unknown "
                             f"(choose from {LOSS_WEIGHTINGS})")
        if self.pass_regularization not in PASS_REGULARIZATIONS:
            raise ValueError(f"model_conf: pass_regularization '{self.pass_regularization}' is unknown "
                             f"(choose from {PASS_REGULARIZATIONS})")
        if self.subnet_start_update < 0:
            raise ValueError(f"model_conf: subnet_start_update must be >= 0, got {self.subnet_start_update}")
        fraction = self.subnet_start_fraction
        if fraction is not None and not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
            raise ValueError(f"model_conf: subnet_start_fraction must be in [0, 1), got {fraction}")
        if fraction is not None and self.subnet_start_update:
            raise ValueError("model_conf: give subnet_start_update or subnet_start_fraction, not both "
                             f"(got {self.subnet_start_update} and {fraction})")

    def check_sizes(self, sizes: List[int]) -> None:
        """Refuse the options that need smaller subnets on a model of one size."""
        if len(sizes) > 1:
            return
        single = [f"{name}: {value!r}" for name, value, off in (
            ("subnet_loss_weighting", self.subnet_loss_weighting, "fixed"),
            ("pass_regularization", self.pass_regularization, "shared"),
            ("subnet_start_update", self.subnet_start_update, 0),
            ("subnet_start_fraction", self.subnet_start_fraction, None)) if value != off]
        if single:
            raise ValueError(f"model_conf: {', '.join(single)} acts on the smaller subnets, but the model has one "
                             f"size ({sizes}); give several subnet_sizes or leave it out")

    def build_selector(self, num_units: int, sizes: List[int]) -> Optional[torch.nn.Module]:
        """The selector of these options for an encoder of ``num_units`` and these sizes."""
        if self.selector is None:
            return None
        if len(sizes) < 2:
            raise ValueError("model_conf: a selector needs at least two subnet_sizes")
        conf = dict(self.selector_conf or {})
        if self.selector == "simple_topk":
            conf.setdefault("k_min", sizes[0])
            if conf["k_min"] != sizes[0]:
                raise ValueError(f"selector_conf: k_min={conf['k_min']} must be the smallest size {sizes[0]}")
        try:
            return SELECTORS[self.selector](num_units, **conf)
        except TypeError as error:
            raise ValueError(f"selector_conf for {self.selector}: {error}") from None


@loadable
class MaskState(AveragedEntry):
    """What a checkpoint's ``subnet_masks`` are: the sizes, their masks (``1111 0101 ...``),
    the update the checkpoint was saved at and the switch (None: fixed masks).

    ``subnet_masks`` is a bool buffer: ESPnet's ``average_nbest_models`` adds the epochs'
    masks (a logical or) and divides, and the result loads back as the union of the masks,
    so a size would run more units than it reports. Checkpoints average only when their
    masks are equal and they are on the same side of the switch (Step-1 weights were
    trained under the selector's gates, not under these masks); otherwise the averaging
    stops naming both (see ``checkpoint_entry``).
    """

    dtype = "des-mask-state"

    @property
    def before_switch(self) -> bool:
        switch = self.get("switch_update")
        return switch is not None and self.get("updates", 0) < switch

    def averaging_key(self) -> Tuple:
        return tuple(self.get("sizes", ())), tuple(self.get("masks", ())), self.before_switch

    def describe(self) -> str:
        """``update 3, in Step 1 (before the switch at update 4)`` and the like."""
        switch = self.get("switch_update")
        if switch is None:
            return f"update {self.get('updates')} (fixed masks)"
        if self.before_switch:
            return f"update {self.get('updates')}, in Step 1 (before the switch at update {switch})"
        return f"update {self.get('updates')}, in Step 2 (after the switch at update {switch})"

    def mix_error(self, other: Optional[dict]) -> str:
        if not isinstance(other, MaskState):
            difference = "the other has no record of its subnet_masks"
            sides = f"one was saved at {self.describe()}"
        else:
            sides = f"one was saved at {self.describe()}, the other at {other.describe()}"
            difference = self._mask_difference(other)
        return (f"DES: cannot average these checkpoints: {sides}; {difference}. Averaging the bool subnet_masks "
                "gives each size the union of its masks (more units than the size reports). Average only epochs "
                "that end after the switch (fewer keep_nbest_models, or more epochs after Step 1) or decode one "
                "epoch (valid.*.best.pth)")

    def _mask_difference(self, other: "MaskState") -> str:
        sizes, theirs = self.get("sizes", []), other.get("sizes", [])
        if sizes != theirs:
            return f"their subnet sizes differ ({sizes} in one, {theirs} in the other)"
        differing = [f"size {size}: {a} in one, {b} in the other"
                     for size, a, b in zip(sizes, self.get("masks", []), other.get("masks", [])) if a != b]
        if differing:
            return "their subnet_masks differ (" + "; ".join(differing) + ")"
        return ("their subnet_masks are equal, but one is from Step 1, whose weights were trained under the "
                "selector's gates, not under these masks")


class DESState:
    """The schedule of one ``supernet_ctc`` model (see the module docstring).

    Args:
        config: the model's :class:`DESConfig`.
        selector: the model's selector (its child module), or None for fixed masks.
        masks: the model's ``subnet_masks`` buffer, rewritten at the switch.
        sizes: the subnet sizes, increasing.
        encoder: the model's encoder (unit names for the log).
    """

    def __init__(self, config: DESConfig, selector: Optional[torch.nn.Module], masks: torch.Tensor,
                 sizes: List[int], encoder: torch.nn.Module):
        self.config = config
        self.selector = selector
        self.masks = masks
        self.sizes = sizes
        self.encoder = encoder
        self._logged_state = None
        self._frozen_selector: Optional[Dict[str, torch.Tensor]] = None
        self._reported_at: Optional[int] = None
        self._subnet_start: Optional[int] = None if config.subnet_start_fraction is not None \
            else config.subnet_start_update
        if selector is not None:
            self.masks.copy_(nested_masks(selector.ranking(), sizes))
        if self._subnet_start is not None:
            self._check_start_against_selector(self._subnet_start, "subnet_start_update")

    # ------------------------------------------------------------------ when subnets start
    def set_training_updates(self, total_updates: int) -> None:
        """The training's number of updates (from the training entry point): resolves
        ``subnet_start_fraction`` into an update."""
        fraction = self.config.subnet_start_fraction
        if fraction is None:
            return
        self._subnet_start = int(round(fraction * total_updates))
        self._check_start_against_selector(self._subnet_start, f"subnet_start_fraction {fraction} "
                                           f"(update {self._subnet_start} of {total_updates})")

    def subnet_start(self) -> int:
        """The first update (0-based) that trains the smaller subnets."""
        if self._subnet_start is None:
            raise ValueError(
                f"model_conf: subnet_start_fraction {self.config.subnet_start_fraction} needs the number of training "
                "updates, which the training entry point (espnet_dynenc.bin.asr_train) sets from max_epoch x "
                "num_iters_per_epoch / accum_grad; train through it with num_iters_per_epoch set, or give "
                "subnet_start_update instead")
        return self._subnet_start

    def subnets_train(self, update: int) -> bool:
        """Whether update ``update`` (0-based) trains the smaller subnets."""
        return len(self.sizes) > 1 and update >= self.subnet_start()

    def _check_start_against_selector(self, start: int, what: str) -> None:
        if self.selector is not None and start >= self.selector.step1_updates:
            raise ValueError(
                f"model_conf: {what} comes at or after the end of the selector's Step 1 (update "
                f"{self.selector.step1_updates}): the selector would learn the masks from no update; start the "
                "subnets earlier or stretch the selector's schedule")

    # ------------------------------------------------------------------ steps
    def in_step1(self, updates_done: int) -> bool:
        """Whether the selector is still learning (Step 1)."""
        return self.selector is not None and updates_done < self.selector.step1_updates

    def training_passes(self, update: int, report_dir: Optional[Path]) -> List[SubnetPass]:
        """The subnets update ``update`` (0-based) trains (see ``espnet_dynenc.model.schedule``)."""
        config = self.config
        if len(self.sizes) > 1 and not self.subnets_train(update):
            self._log_state(("supernet_alone", self.subnet_start()), update)
            passes = [p for p in self._paper_passes(update) if p.size == self.sizes[-1]]
        else:
            passes = self._paper_passes(update)
            self._log_state(("step1", self.selector.current_k(update)) if self.in_step1(update) else ("step2",),
                            update)
            if config.log_sandwich_draws and report_dir is not None and not self.in_step1(update):
                with open(report_dir / f"sandwich_draws.rank{rank()}.txt", "a", encoding="utf-8") as f:
                    f.write(f"{update} {' '.join(str(p.size) for p in passes)}\n")
        return regularize_passes(passes, config.pass_regularization, self.encoder.num_units)

    def _paper_passes(self, update: int) -> List[SubnetPass]:
        """The passes of the paper's schedule: Step 1, or the sandwich rule."""
        config = self.config
        if self.in_step1(update):
            return step1_passes(self.selector, update, self.encoder.num_units, self.sizes[0],
                                config.supernet_loss_weight, config.subnet_loss_weight,
                                config.step1_stochastic_depth)
        return step2_passes(self.masks, self.sizes, update, config.supernet_loss_weight,
                            config.subnet_loss_weight, config.sandwich_stochastic_depth)

    def validation_passes(self, mask_for) -> List[SubnetPass]:
        """Validation scores every size, so any size can pick or average checkpoints."""
        weights = (self.config.supernet_loss_weight, self.config.subnet_loss_weight)
        return [SubnetPass(size, mask_for(size), weights[0] if size == self.sizes[-1] else weights[1])
                for size in self.sizes]

    def loss_weight(self, subnet: SubnetPass, loss_ctc: torch.Tensor,
                    frames_per_utterance: float) -> Union[float, torch.Tensor]:
        """The weight of a pass's CTC loss: the pass's own, or with ``size_aware`` weights
        ``1 - exp(-L)`` for a smaller subnet, L its loss per encoder frame (ESPnet's CTC
        loss is per utterance), detached: the weight steers, it is not trained."""
        if self.config.subnet_loss_weighting == "fixed" or subnet.size == self.sizes[-1]:
            return subnet.loss_weight
        per_frame = loss_ctc.detach() / max(frames_per_utterance, 1e-8)
        return 1.0 - torch.exp(-per_frame)

    def extra_loss(self, updates_done: int, frames_per_utterance: float,
                   stats: Dict[str, Optional[torch.Tensor]]) -> Union[float, torch.Tensor]:
        """The selector's own loss in Step 1 (Iterative-Zero-Out's sparsity term), from the
        update the subnets start on."""
        if not self.in_step1(updates_done) or not self.subnets_train(updates_done):
            return 0.0
        loss = self.selector.extra_loss(updates_done, frames_per_utterance)
        if isinstance(loss, torch.Tensor):
            stats["loss_selector"] = loss.detach()
        return loss

    def unused_modules(self, updates_done: int) -> List[torch.nn.Module]:
        """Trainable modules an update leaves unused: the selector in Step 2 (frozen) and
        before the subnets start (no gated pass)."""
        if self.selector is not None and not (self.in_step1(updates_done) and self.subnets_train(updates_done)):
            return [self.selector]
        return []

    def after_update(self, update: int, model) -> None:
        """``update`` optimizer updates are done: keep the frozen selector frozen, let the
        selector act between updates, and switch to Step 2 at the end of Step 1."""
        if self.selector is None:
            return
        step1 = self.selector.step1_updates
        if update > step1 and self._frozen_selector is not None:
            # A DDP wrapper built in Step 1 still expects the selector's gradients (zero since
            # the switch); AdamW's decay would still move it, so its values are put back.
            self.selector.load_state_dict(self._frozen_selector)
        if update <= step1:
            self.selector.after_update(update)
            if update % max(1, step1 // 50) == 0:
                self._append_score_history(update, model.report_dir)
        if update == step1:
            self.masks.copy_(nested_masks(self.selector.ranking(), self.sizes))
            self._frozen_selector = {k: v.detach().clone() for k, v in self.selector.state_dict().items()}
            logging.info("DES: Step 1 ends after update %d; masks frozen:\n%s", update, self.describe_masks())
            self.write_report(model)

    def after_load(self, updates_done: int) -> None:
        """A model loaded in Step 2 (e.g. ``--resume``) keeps its selector frozen. ESPnet
        resumes before wrapping the model in DDP, so frozen parameters are left out of the
        wrapper and need no gradient."""
        if self.selector is not None and not self.in_step1(updates_done):
            for p in self.selector.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_entry(self, masks: torch.Tensor, updates_done: int) -> MaskState:
        """The :class:`MaskState` of ``masks`` (the model's buffer) saved after ``updates_done`` updates."""
        per_block = self.encoder.units_per_block
        return MaskState(
            sizes=list(self.sizes),
            masks=[mask_to_string([bool(v) for v in mask.tolist()], per_block) for mask in masks],
            updates=int(updates_done),
            switch_update=None if self.selector is None else int(self.selector.step1_updates),
        )

    # ------------------------------------------------------------------ reports
    def end_of_epoch(self, model) -> None:
        """ESPnet's trainer switches to eval for validation after every epoch: report then."""
        updates = int(model.num_updates)
        if self.selector is not None and updates > 0 and updates != self._reported_at:
            self._reported_at = updates
            self.write_report(model)

    def describe_masks(self) -> str:
        per_block = self.encoder.units_per_block
        return "\n".join(f"  {size:>3}: {mask_to_string(tuple(bool(v) for v in mask.tolist()), per_block)}"
                         for size, mask in zip(self.sizes, self.masks))

    def write_report(self, model) -> None:
        """``subnets.yaml`` and plots into the experiment dir (rank 0, when one is set)."""
        if model.report_dir is None or rank() != 0:
            return
        write_subnet_report(model, model.report_dir)

    def _append_score_history(self, update: int, report_dir: Optional[Path]) -> None:
        if report_dir is None or rank() != 0:
            return
        append_score_history(report_dir, update, self.selector.ranking().tolist())

    def _log_state(self, state, update: int) -> None:
        if state == self._logged_state:
            return
        self._logged_state = state
        if state[0] == "supernet_alone":
            logging.info("DES: only the supernet trains from update %d; the smaller subnets start at update %d",
                         update, state[1])
        elif state[0] == "step1":
            kept = top_k_units(self.selector.ranking(), state[1])
            names = ", ".join(self.encoder.unit_name(u) for u in range(self.encoder.num_units) if u not in kept)
            logging.info("DES Step 1, update %d: k=%d, pruned units: %s", update, state[1], names or "none")
        else:
            logging.info("DES Step 2 (sandwich rule) from update %d; masks:\n%s", update, self.describe_masks())
