"""``supernet_ctc``: a CTC model training several nested subnets of one encoder jointly.

Every subnet size has its own CTC output layer (or all share one); the encoder and its
frontend are shared. Features, SpecAugment, normalisation and the subsampling frontend
run once per batch and feed every subnet of the update.

``self.ctc`` is the head of the *active* subnet (the supernet unless
:meth:`select_subnet` chose another), so ESPnet code that reads ``model.ctc``, such as
``Speech2Text``'s CTC scorer, decodes the selected subnet unchanged. The supernet's head
keeps ESPnet's parameter names (``ctc.ctc_lo.*``), so a stock ESPnet CTC checkpoint loads.
"""
import copy
import dataclasses
import logging
import weakref
from pathlib import Path
from dataclasses import dataclass
from typing import Collection, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.torch_utils.device_funcs import force_gatherable
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils.checkpoint import checkpoint
from typeguard import typechecked

from espnet_dynenc.distributed import append_parameter_checksum
from espnet_dynenc.encoder.dynamic_conformer import DynamicConformerEncoder, EmbeddedInput
from espnet_dynenc.model.dmao_state import DMAOState
from espnet_dynenc.model.des_state import DESConfig, DESState, MaskState
from espnet_dynenc.model.distillation import DistillationConfig, Teacher, distillation_loss
from espnet_dynenc.model.schedule import SubnetPass, supernet_first
from espnet_dynenc.model.subnets import build_subnet_masks


# The model's own extra state: a MaskState describing ``subnet_masks`` (see get_extra_state).
MASK_STATE_KEY = "_extra_state"


@dataclass
class _InferenceSelection:
    size: Optional[int] = None
    skip_blocks: Tuple[int, ...] = ()


# What inference entry points ask for before ESPnet builds the model from its config.
_DEFAULT_INFERENCE = _InferenceSelection()


class _PassResult(NamedTuple):
    """What one subnet pass gives the loss: its CTC loss, its CER (validation), its
    distillation term (a student pass, or the supernet's exits) and, from the supernet
    pass when distilling, the teacher of the passes after it."""

    loss_ctc: torch.Tensor
    cer_ctc: Optional[float]
    loss_distill: Optional[torch.Tensor] = None
    teacher: Optional[Teacher] = None


def set_default_inference_subnet(size: Optional[int], skip_blocks: Collection[int] = ()) -> None:
    """Make models built from now on in this process start with this subnet selected.

    ``Speech2Text`` builds the model from ``config.yaml`` and offers no way to pass model
    arguments; ``espnet_dynenc.bin.asr_inference`` calls this with its ``--subnet`` option.
    """
    _DEFAULT_INFERENCE.size = None if size is None else int(size)
    _DEFAULT_INFERENCE.skip_blocks = tuple(int(b) for b in skip_blocks)


class ESPnetSupernetCTCModel(ESPnetASRModel):
    """CTC model over a ``dynamic_conformer`` supernet and its nested subnets.

    Args (besides ``ESPnetASRModel``'s; ``ctc_weight`` must stay 1.0):
        subnet_sizes: increasing unit counts, the last one the whole encoder
            (default: the supernet alone).
        subnet_masks: one mask per size (a 0/1 string, spaces ignored, or a 0/1 list);
            default: the first k units.
        supernet_loss_weight, subnet_loss_weight, selector, selector_conf,
        step1_stochastic_depth, sandwich_stochastic_depth, log_sandwich_draws: the Dynamic
            Encoder Size schedule, see :class:`~espnet_dynenc.model.des_state.DESConfig`.
        subnet_loss_weighting: ``fixed`` (default: ``subnet_loss_weight``) or
            ``size_aware`` (``1 - exp(-L_m)``, L_m subnet m's CTC loss per frame, detached;
            the DES authors' follow-up, OrthoSoftmax 2025); see ``DESConfig``.
        pass_regularization: ``shared`` (default: every pass sees the configured dropout
            and stochastic depth), ``kept_fraction`` (a subnet's dropout rates times the
            fraction of units it keeps; OrthoSoftmax 2025) or ``supernet_only`` (dropout and
            stochastic depth in the supernet pass only; AlphaNet). The frontend's dropout
            then runs in each pass (``DynamicConformerEncoder.forward_frontend``).
        subnet_start_update, subnet_start_fraction: the smaller subnets train from this
            update (default 0), or from this fraction of the training's updates (default
            None); only the supernet trains before (Once-for-All, DepS); see ``DESConfig``.
        inplace_distillation: None (default, off) or a mapping of
            :class:`~espnet_dynenc.model.distillation.DistillationConfig`'s fields
            (``weight`` 1.0, ``warmup_updates`` 0, ``ramp_updates`` 0, ``frames``
            ``all``/``non_blank``, ``exits`` true): every smaller pass (Step 1's gated
            subnet, the sandwich's sizes, the Aux-Loss heads) and the intermediate CTC exits
            learn the supernet pass's detached CTC posteriors of the same update, by a
            frame-level KL normalised as the CTC loss (Yu & Huang 2019, universally slimmable
            networks). The supernet pass then runs first.
        share_ctc_head: one CTC output layer for all sizes instead of one per size.
        checkpoint_subnets: keep only one subnet's activations alive at a time: each
            subnet's blocks are recomputed during backward (about one more forward pass of
            compute, peak memory close to a single-model update).
        dmao: DMAO grow-and-drop reallocation during training (``DMAOConfig``'s fields:
            ``event_updates``, ``rho``, ``score_interval``, ...); a single-size model only.
        log_parameter_checksums: every process appends ``<update> <parameters> <sum>``
            after each update to ``parameter_checksums.rank<r>.txt`` in the experiment dir
            (to check that the processes of a multi-process training stay identical).

    Every option beyond the paper is off by default, so the paper-parity configs train as
    published. Stats besides the per-size ones: ``loss_distill`` (the weighted distillation
    terms in the loss), ``loss_distill_<size>`` and ``loss_distill_interctc_layer<l>`` (each
    term before its weight), ``loss_weight_<size>`` (size-aware weights).

    Optimizer updates are counted in the ``num_updates`` buffer (saved in checkpoints) by
    a hook on the optimizer that steps this model's parameters, so ``accum_grad`` and
    skipped steps are accounted for.
    """

    @typechecked
    def __init__(
        self,
        vocab_size: int,
        token_list: Union[Tuple[str, ...], List[str]],
        frontend,
        specaug,
        normalize,
        preencoder,
        encoder: DynamicConformerEncoder,
        postencoder,
        decoder,
        ctc: CTC,
        joint_network,
        ctc_weight: float = 1.0,
        subnet_sizes: Optional[List[int]] = None,
        subnet_masks: Optional[List[Union[str, List[int]]]] = None,
        supernet_loss_weight: float = 1.0,
        subnet_loss_weight: float = 0.3,
        share_ctc_head: bool = False,
        selector: Optional[str] = None,
        selector_conf: Optional[Dict] = None,
        step1_stochastic_depth: float = 0.0,
        sandwich_stochastic_depth: float = 0.0,
        checkpoint_subnets: bool = False,
        log_sandwich_draws: bool = False,
        dmao: Optional[Dict] = None,
        subnet_loss_weighting: str = "fixed",
        pass_regularization: str = "shared",
        subnet_start_update: int = 0,
        subnet_start_fraction: Optional[float] = None,
        inplace_distillation: Optional[Dict] = None,
        log_parameter_checksums: bool = False,
        **kwargs,
    ):
        if not isinstance(encoder, DynamicConformerEncoder):
            raise ValueError(f"model supernet_ctc needs encoder: dynamic_conformer, got {type(encoder).__name__}")
        if ctc_weight != 1.0 or joint_network is not None:
            raise ValueError(f"model supernet_ctc is CTC-only: set ctc_weight: 1.0 (got {ctc_weight}) and no transducer")
        if decoder is not None:
            logging.warning("model supernet_ctc is CTC-only: the %s decoder is not used", type(decoder).__name__)
            decoder = None
        if postencoder is not None:
            raise ValueError("model supernet_ctc does not support a postencoder")
        super().__init__(
            vocab_size=vocab_size, token_list=token_list, frontend=frontend, specaug=specaug,
            normalize=normalize, preencoder=preencoder, encoder=encoder, postencoder=postencoder,
            decoder=decoder, ctc=ctc, joint_network=joint_network, ctc_weight=ctc_weight, **kwargs,
        )
        if selector is not None and subnet_masks is not None:
            raise ValueError("model_conf: give either subnet_masks (fixed) or a selector (learned), not both")
        des = DESConfig(supernet_loss_weight=supernet_loss_weight, subnet_loss_weight=subnet_loss_weight,
                        selector=selector, selector_conf=selector_conf, step1_stochastic_depth=step1_stochastic_depth,
                        sandwich_stochastic_depth=sandwich_stochastic_depth, log_sandwich_draws=log_sandwich_draws,
                        subnet_loss_weighting=subnet_loss_weighting, pass_regularization=pass_regularization,
                        subnet_start_update=subnet_start_update, subnet_start_fraction=subnet_start_fraction)
        self.distillation = DistillationConfig.from_conf(inplace_distillation)
        self.register_buffer("subnet_masks", build_subnet_masks(subnet_sizes, subnet_masks, encoder.num_units))
        self.subnet_sizes: List[int] = [int(m.sum()) for m in self.subnet_masks]
        des.check_sizes(self.subnet_sizes)
        self._check_distillation_has_students(encoder)
        self.log_parameter_checksums = log_parameter_checksums
        self.selector = des.build_selector(encoder.num_units, self.subnet_sizes)
        self.des = DESState(des, self.selector, self.subnet_masks, self.subnet_sizes, encoder)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.checkpoint_subnets = checkpoint_subnets
        self.report_dir: Optional[Path] = None  # set by the training entry point
        self._count_optimizer_steps()
        self.share_ctc_head = share_ctc_head
        self.subnet_ctcs = torch.nn.ModuleDict()
        if not share_ctc_head:
            for size in self.subnet_sizes[:-1]:
                head = copy.deepcopy(ctc)
                head.ctc_lo.reset_parameters()
                self.subnet_ctcs[str(size)] = head
        self._active_size: Optional[int] = None
        self._active_skip_blocks: Tuple[int, ...] = ()
        self.select_subnet(_DEFAULT_INFERENCE.size, _DEFAULT_INFERENCE.skip_blocks)
        if dmao is not None and (self.selector is not None or len(self.subnet_sizes) > 1):
            raise ValueError("model_conf.dmao: reallocation changes module widths under the subnets' masks; "
                             "use it on a single-size model (no subnet_sizes / selector)")
        self.dmao = DMAOState(encoder, dmao) if dmao is not None else None
        if self.dmao is not None:
            # first in the state dict: averaging checkpoints meets the DMAO architecture
            # (and refuses a mix of events) before any tensor (see CheckpointState)
            self._modules = {"dmao": self._modules.pop("dmao"), **self._modules}

    def _check_distillation_has_students(self, encoder: DynamicConformerEncoder) -> None:
        """In-place distillation needs a student: a smaller size or an intermediate exit."""
        if self.distillation is None or len(self.subnet_sizes) > 1:
            return
        if not (self.distillation.exits and encoder.interctc_layer_idx and self.interctc_weight > 0):
            raise ValueError(
                "model_conf.inplace_distillation: nothing to distil into: the model has one size and no intermediate "
                "CTC exit that learns (interctc_layer_idx with interctc_weight > 0 and exits: true); give several "
                "subnet_sizes or exits, or leave inplace_distillation out")

    # ------------------------------------------------------------------ subnets
    @property
    def ctc(self) -> CTC:
        return self.ctc_for(getattr(self, "_active_size", None))

    @ctc.setter
    def ctc(self, value: CTC) -> None:
        # nn.Module registers a module assigned to ``self.ctc`` itself; this setter only
        # sees non-module values, which a CTC-only model never has.
        raise ValueError(f"model supernet_ctc needs a CTC head, got {value!r}")

    @property
    def supernet_size(self) -> int:
        return self.subnet_sizes[-1]

    def ctc_for(self, size: Optional[int]) -> CTC:
        """The CTC output layer of subnet ``size`` (None: the supernet)."""
        subnet_ctcs = self._modules.get("subnet_ctcs")
        if size is None or subnet_ctcs is None or str(size) not in subnet_ctcs:
            return self._modules["ctc"]
        return subnet_ctcs[str(size)]

    def mask_for(self, size: Optional[int]) -> Tuple[bool, ...]:
        """The unit mask of subnet ``size`` (None: the supernet)."""
        if size is None:
            size = self.supernet_size
        if size not in self.subnet_sizes:
            raise ValueError(f"subnet {size} is not one of this model's sizes {self.subnet_sizes}")
        return tuple(bool(v) for v in self.subnet_masks[self.subnet_sizes.index(size)].tolist())

    def select_subnet(self, size: Optional[int], skip_blocks: Collection[int] = ()) -> None:
        """Make ``encode`` and ``ctc`` use subnet ``size`` (None: the supernet) without ``skip_blocks``."""
        if size is not None and size not in self.subnet_sizes:
            raise ValueError(f"subnet {size} is not one of this model's sizes {self.subnet_sizes}")
        self.encoder._checked_skip_blocks(skip_blocks)
        self._active_size = size
        self._active_skip_blocks = tuple(sorted(int(b) for b in skip_blocks))

    @property
    def active_subnet(self) -> int:
        return self.supernet_size if self._active_size is None else self._active_size

    # ------------------------------------------------------------------ encoding
    def extract_features(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        """Features, SpecAugment (training), normalisation and pre-encoder, as ESPnet's ``encode``."""
        from espnet2.asr.espnet_model import autocast, autocast_type

        with autocast(self.autocast_frontend, dtype=autocast_type):
            feats, feats_lengths = self._extract_feats(speech, speech_lengths)
            if self.specaug is not None and self.training:
                feats, feats_lengths = self.specaug(feats, feats_lengths)
            if self.normalize is not None:
                feats, feats_lengths = self.normalize(feats, feats_lengths)
        if self.preencoder is not None:
            feats, feats_lengths = self.preencoder(feats, feats_lengths)
        return feats, feats_lengths

    def embed(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> EmbeddedInput:
        """Everything before the blocks: shared by all subnets (with ``pass_regularization``
        other than ``shared``, the frontend's dropout is left to each pass)."""
        feats, feats_lengths = self.extract_features(speech, speech_lengths)
        defer = self.des.config.pass_regularization != "shared"
        return self.encoder.forward_frontend(feats, feats_lengths, defer_dropout=defer)

    def encode_subnet(self, embedded: EmbeddedInput, subnet: SubnetPass, skip_blocks: Collection[int] = ()):
        """Blocks of one subnet; returns (encoder_out, intermediate_outs or None, lengths)."""
        out, lens, _ = self.encoder.forward_blocks(
            embedded, subnet.mask, subnet.unit_gates, subnet.unit_drop_rates, skip_blocks,
            ctc=self.ctc_for(subnet.size), dropout_scale=subnet.dropout_scale, stochastic_depth=subnet.stochastic_depth,
        )
        if isinstance(out, tuple):
            return out[0], out[1], lens
        return out, None, lens

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        """Frontend + encoder of the active subnet (used by ESPnet's ``Speech2Text``)."""
        size = self.active_subnet
        subnet = SubnetPass(size, self.mask_for(size), 1.0)
        out, intermediate, lens = self.encode_subnet(self.embed(speech, speech_lengths), subnet, self._active_skip_blocks)
        if intermediate is not None:
            return (out, intermediate), lens
        return out, lens

    # ------------------------------------------------------------------ training
    @property
    def in_step1(self) -> bool:
        """Whether the selector is still learning (Step 1)."""
        return self.des.in_step1(int(self.num_updates))

    def training_passes(self) -> List[SubnetPass]:
        """The subnets this update trains (see :class:`~espnet_dynenc.model.des_state.DESState`)."""
        return self.des.training_passes(int(self.num_updates), self.report_dir)

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """One frontend pass, then the CTC loss of every subnet of this update, weighted and
        summed, plus the in-place distillation terms when configured.

        Stats: ``loss_ctc_<size>`` and (validation) ``cer_ctc_<size>`` per size; ``loss_ctc``
        and ``cer_ctc`` are the supernet's, so ESPnet's default criteria still work; the
        terms of the options beyond the paper (see the class docstring).
        """
        batch_size = speech.shape[0]
        text[text == -1] = self.ignore_id
        text = text[:, : text_lengths.max()]
        embedded = self.embed(speech, speech_lengths)
        passes = self.training_passes() if self.training else self.des.validation_passes(self.mask_for)
        if self.distillation is not None:
            passes = supernet_first(passes, self.supernet_size)
        frames = self._frames_per_utterance(embedded)
        loss = 0.0
        distilled: List[torch.Tensor] = []
        stats: Dict[str, Optional[torch.Tensor]] = {}
        teacher: Optional[Teacher] = None
        for subnet in passes:
            if self.training and self.checkpoint_subnets:
                result = self._checkpointed_subnet_loss(embedded, subnet, text, text_lengths, stats, teacher)
            else:
                result = self._subnet_loss(embedded, subnet, text, text_lengths, stats, teacher)
            if result.teacher is not None:
                teacher = result.teacher
            stats[f"loss_ctc_{subnet.size}"] = result.loss_ctc.detach()
            stats[f"cer_ctc_{subnet.size}"] = result.cer_ctc
            if subnet.size == self.supernet_size:
                stats["loss_ctc"] = result.loss_ctc.detach()
                stats["cer_ctc"] = result.cer_ctc
            weight = self.des.loss_weight(subnet, result.loss_ctc, frames)
            if isinstance(weight, torch.Tensor):
                stats[f"loss_weight_{subnet.size}"] = weight
            loss = loss + weight * result.loss_ctc
            if result.loss_distill is not None:
                distilled.append(result.loss_distill)
        if self.distillation is not None:
            loss = loss + self._distillation_term(distilled, stats)
        loss = loss + self.extra_loss(stats, embedded)
        if self.training:
            loss = loss + self._zero_gradient_path([p.size for p in passes])
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, batch_size), loss.device)

    def _distillation_term(self, distilled: List[torch.Tensor],
                           stats: Dict[str, Optional[torch.Tensor]]) -> Union[float, torch.Tensor]:
        """The distillation terms of this update at its weight (none during the warm-up)."""
        weight = self.distillation.weight_at(int(self.num_updates))
        if not distilled or weight == 0.0:
            stats["loss_distill"] = torch.zeros((), device=self.subnet_masks.device)
            return 0.0
        term = weight * sum(distilled)
        stats["loss_distill"] = term.detach()
        return term

    @staticmethod
    def _frames_per_utterance(embedded: EmbeddedInput) -> float:
        """The batch's encoder frames per utterance: what separates ESPnet's CTC normalisation
        (per utterance) from a per-frame one."""
        return float(embedded.masks.sum()) / embedded.masks.shape[0]

    def extra_loss(self, stats: Dict[str, Optional[torch.Tensor]], embedded: EmbeddedInput) -> Union[float, torch.Tensor]:
        """The selector's own loss in Step 1, told the batch's encoder frames per utterance."""
        if not self.training:
            return 0.0
        return self.des.extra_loss(int(self.num_updates), self._frames_per_utterance(embedded), stats)

    def before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Called before every optimizer update of this model's parameters (gradients final)."""
        if self.dmao is not None:
            self.dmao.check_optimizer(optimizer, self)
            self.dmao.before_step(int(self.num_updates) + 1)

    def on_optimizer_step(self, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        """Called after every optimizer update of this model's parameters."""
        self.num_updates += 1
        update = int(self.num_updates)
        if self.dmao is not None and optimizer is not None:
            self.dmao.after_step(update, optimizer, self, self.report_dir)
        self.des.after_update(update, self)
        if self.log_parameter_checksums and self.report_dir is not None:
            append_parameter_checksum(Path(self.report_dir) / "parameter_checksums", update, self)

    def train(self, mode: bool = True):
        """ESPnet's trainer switches to eval for validation after every epoch: report then."""
        if self.training and not mode:
            self.des.end_of_epoch(self)
        return super().train(mode)

    def describe_masks(self) -> str:
        return self.des.describe_masks()

    def write_report(self) -> None:
        """``subnets.yaml`` and plots into the experiment dir (rank 0, when one is set)."""
        self.des.write_report(self)

    def _count_optimizer_steps(self) -> None:
        """Count updates with a global optimizer hook that fires only for this model's optimizer.

        A global hook needs no change to ESPnet's trainer, so stock ``asr_train`` run through
        the launcher counts correctly too; it is removed when the model is garbage-collected.
        """
        model_ref = weakref.ref(self)

        def steps_this_model(optimizer) -> Optional["ESPnetSupernetCTCModel"]:
            model = model_ref()
            if model is None:
                return None
            first = next(model.encoder.parameters())  # the input layer's: never reallocated
            if any(p is first for group in optimizer.param_groups for p in group["params"]):
                return model
            return None

        def pre_hook(optimizer, args, kwargs):
            model = steps_this_model(optimizer)
            if model is not None:
                model.before_optimizer_step(optimizer)

        def post_hook(optimizer, args, kwargs):
            model = steps_this_model(optimizer)
            if model is not None:
                model.on_optimizer_step(optimizer)

        handles = [register_optimizer_step_pre_hook(pre_hook), register_optimizer_step_post_hook(post_hook)]
        for handle in handles:
            weakref.finalize(self, handle.remove)

    def get_extra_state(self) -> MaskState:
        """``_extra_state``: the masks with the update they were saved at and the switch, so
        that ESPnet's checkpoint averaging refuses a mix (see :class:`MaskState`)."""
        return self.des.checkpoint_entry(self.subnet_masks, int(self.num_updates))

    def set_extra_state(self, state) -> None:
        """Nothing to restore: the entry only describes the masks and updates loaded beside it
        (a state dict assembled from another model's, e.g. ESPnet's ``init_param``, may carry
        that model's entry)."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        key = prefix + MASK_STATE_KEY
        if key not in state_dict and key in missing_keys:
            missing_keys.remove(key)  # saved before the entry existed (or by stock ESPnet): nothing is lost

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load; a model loaded in Step 2 (e.g. ``--resume``) keeps its selector frozen.

        ESPnet resumes before wrapping the model in DDP, so parameters frozen here are left
        out of the wrapper and need no gradient.
        """
        if self.dmao is not None:
            self.dmao.restore(state_dict, self)  # the checkpoint's architecture, before its weights
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._share_masks_with_schedule()  # ``assign`` puts the loaded tensor in place of the buffer
        self.des.after_load(int(self.num_updates))
        return result

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self._share_masks_with_schedule()  # a move to another device gives the buffer a new tensor
        return result

    def _share_masks_with_schedule(self) -> None:
        """The schedule writes the masks at the switch: into the buffer the model has now."""
        if "des" in self.__dict__:
            self.des.masks = self.subnet_masks

    def _zero_gradient_path(self, trained_sizes: List[int]) -> torch.Tensor:
        """0 x every trainable parameter this update leaves unused (other sizes' heads, a
        frozen selector): each gets an exact zero gradient, so multi-GPU training runs
        without ``unused_parameters`` and every update treats parameters alike."""
        unused = [head for size, head in self.subnet_ctcs.items() if int(size) not in trained_sizes]
        unused += self.des.unused_modules(int(self.num_updates))
        params = [p for module in unused for p in module.parameters() if p.requires_grad]
        if not params:
            return torch.zeros((), device=self.subnet_masks.device)
        return 0.0 * sum(p.sum() for p in params)

    def _checkpointed_subnet_loss(self, embedded: EmbeddedInput, subnet: SubnetPass, text, text_lengths, stats,
                                  teacher: Optional[Teacher]) -> _PassResult:
        """``_subnet_loss`` whose activations are recomputed in backward (same RNG draws, the
        same dropout rates: the pass sets them inside the recomputed function)."""

        def loss_of(xs: torch.Tensor) -> _PassResult:
            shared = dataclasses.replace(embedded, xs=xs)
            return self._subnet_loss(shared, subnet, text, text_lengths, stats, teacher)

        return checkpoint(loss_of, embedded.xs, use_reentrant=False)._replace(cer_ctc=None)

    def _subnet_loss(self, embedded: EmbeddedInput, subnet: SubnetPass, text, text_lengths, stats,
                     teacher: Optional[Teacher]) -> _PassResult:
        """One pass: its CTC loss (with InterCTC for the supernet) and, when distilling, its
        term (a smaller pass learns ``teacher``; the supernet pass makes the teacher, which
        its own exits learn)."""
        out, intermediate, lens = self.encode_subnet(embedded, subnet)
        head = self.ctc_for(subnet.size)
        loss_ctc, cer_ctc = self._ctc_loss_with(head, out, lens, text, text_lengths)
        is_supernet = subnet.size == self.supernet_size
        made: Optional[Teacher] = None
        loss_distill: Optional[torch.Tensor] = None
        if self.distillation is not None:
            log_probs = head.log_softmax(out)
            if is_supernet:
                made = Teacher.from_log_probs(log_probs, lens, self.distillation.frames, self.blank_id)
            elif teacher is None:
                raise RuntimeError(f"in-place distillation: subnet {subnet.size} ran before the supernet pass")
            else:
                loss_distill = distillation_loss(log_probs, teacher)
                stats[f"loss_distill_{subnet.size}"] = loss_distill.detach()
        if intermediate and self.interctc_weight > 0 and is_supernet:
            inter_losses, exit_terms = [], []
            for layer, inter_out in intermediate:
                loss_ic, cer_ic = self._ctc_loss_with(head, inter_out, lens, text, text_lengths)
                stats[f"loss_interctc_layer{layer}"] = loss_ic.detach()
                stats[f"cer_interctc_layer{layer}"] = cer_ic
                inter_losses.append(loss_ic)
                if made is not None and self.distillation.exits:
                    term = distillation_loss(head.log_softmax(inter_out), made)
                    stats[f"loss_distill_interctc_layer{layer}"] = term.detach()
                    exit_terms.append(term)
            loss_inter = sum(inter_losses) / len(inter_losses)
            loss_ctc = (1 - self.interctc_weight) * loss_ctc + self.interctc_weight * loss_inter
            if exit_terms:
                # weighted as the exits' CTC losses are
                loss_distill = self.interctc_weight * sum(exit_terms) / len(exit_terms)
        return _PassResult(loss_ctc, cer_ctc, loss_distill, made)

    def _ctc_loss_with(self, head: CTC, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        loss = head(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        cer = None
        if not self.training and self.error_calculator is not None:
            ys_hat = head.argmax(encoder_out).data
            cer = self.error_calculator(ys_hat.cpu(), ys_pad.cpu(), is_ctc=True)
        return loss, cer

    # ------------------------------------------------------------------ size
    def subnet_parameter_count(self, size: Optional[int] = None, skip_blocks: Collection[int] = ()) -> int:
        """Parameters subnet ``size`` uses: its encoder part and its CTC head."""
        mask = self.mask_for(size)
        head = self.ctc_for(size)
        front = [m for m in (self.frontend, self.normalize, self.preencoder) if m is not None]
        return (
            self.encoder.subnet_parameter_count(mask, skip_blocks)
            + sum(p.numel() for p in head.ctc_lo.parameters())
            + sum(p.numel() for m in front for p in m.parameters())
        )

