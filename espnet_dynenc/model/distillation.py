"""In-place distillation: the supernet pass of an update teaches every smaller pass.

Yu & Huang (2019, "Universally Slimmable Networks and Improved Training Techniques")
train each smaller width against the largest width's predictions of the same batch,
computed in the same update and detached, instead of the labels alone; BigNAS and
AlphaNet do the same, and in ASR TODM (Shangguan et al. 2023) and collaborative training
of acoustic encoders (Nagaraja et al. 2021) make weight-shared sizes match separately
trained ones with it. For CTC a teacher that shares the encoder and the frame rate
emits its spikes where the student can, which a separate teacher does not (SKD-CTC,
Interspeech 2024); Hilmes et al. (2025) compare distilling every frame with distilling
the frames the teacher does not label blank.

Here the term of a student pass is the frame-level ``KL(teacher || student)`` between the
supernet's detached CTC posteriors and the student's CTC log-posteriors, summed over the
chosen valid frames and divided by the number of utterances, as ESPnet's CTC loss sums
over the batch and divides by its size: the two are on the same scale. The intermediate
CTC exits of layer pruning on demand (Lee et al. 2021) learn the same way from the final
output of their own pass, and the Aux-Loss heads are subnet passes of their own.
"""
from dataclasses import dataclass, fields
from typing import Dict, Optional

import torch

FRAME_CHOICES = ("all", "non_blank")
OPTION = "model_conf.inplace_distillation"


@dataclass(frozen=True)
class DistillationConfig:
    """The fields of ``model_conf.inplace_distillation`` (``supernet_ctc``).

    Attributes:
        weight: multiplies each student's term (and the exits' term) in the loss.
        warmup_updates: no distillation in the first ``warmup_updates`` updates, while the
            teacher is still near chance.
        ramp_updates: after the warm-up, the weight rises linearly over this many updates
            (update u, counted from 0, gets ``weight * min(1, (u - warmup_updates + 1) /
            ramp_updates)``); 0 starts at the full weight.
        frames: ``all`` valid frames, or ``non_blank``: those whose teacher argmax is not
            blank (what CTC's peaky blank-dominated posteriors leave to learn).
        exits: also distil into the intermediate CTC exits (``interctc_layer_idx`` with
            ``interctc_weight`` > 0), weighted like their CTC losses: ``interctc_weight``
            times the mean of their terms.
    """

    weight: float = 1.0
    warmup_updates: int = 0
    ramp_updates: int = 0
    frames: str = "all"
    exits: bool = True

    def __post_init__(self):
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) \
                or not 0.0 < float(self.weight) < float("inf"):
            raise ValueError(f"{OPTION}.weight must be a number > 0, got {self.weight!r} "
                             "(leave inplace_distillation out to train without it)")
        for name in ("warmup_updates", "ramp_updates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{OPTION}.{name} must be a whole number of updates >= 0, got {value!r}")
        if self.frames not in FRAME_CHOICES:
            raise ValueError(f"{OPTION}.frames must be one of {FRAME_CHOICES}, got {self.frames!r}")
        if not isinstance(self.exits, bool):
            raise ValueError(f"{OPTION}.exits must be true or false, got {self.exits!r}")

    @classmethod
    def from_conf(cls, conf: Optional[Dict]) -> Optional["DistillationConfig"]:
        """The config of ``model_conf.inplace_distillation`` (None: off); unknown fields are refused."""
        if conf is None:
            return None
        if not isinstance(conf, dict):
            raise ValueError(f"{OPTION} must be a mapping of {[f.name for f in fields(cls)]}, got {conf!r}")
        unknown = sorted(set(conf) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{OPTION}: unknown field(s) {unknown} (known: {[f.name for f in fields(cls)]})")
        return cls(**conf)

    def weight_at(self, update: int) -> float:
        """The weight of update ``update`` (0-based: the model's ``num_updates`` before its step)."""
        if update < self.warmup_updates:
            return 0.0
        if self.ramp_updates == 0:
            return float(self.weight)
        return float(self.weight) * min(1.0, (update - self.warmup_updates + 1) / self.ramp_updates)


@dataclass
class Teacher:
    """The supernet pass's detached CTC log-posteriors and the frames distilled from them."""

    log_probs: torch.Tensor  # (batch, time, vocab), no gradient
    frames: torch.Tensor  # (batch, time) bool: valid frames of the chosen kind

    @classmethod
    def from_log_probs(cls, log_probs: torch.Tensor, lengths: torch.Tensor, frames: str,
                       blank_id: int) -> "Teacher":
        """Detach ``log_probs`` and choose its frames: the first ``lengths`` of each
        utterance, and with ``non_blank`` only those whose argmax is not ``blank_id``."""
        if frames not in FRAME_CHOICES:
            raise ValueError(f"{OPTION}.frames must be one of {FRAME_CHOICES}, got {frames!r}")
        log_probs = log_probs.detach()
        steps = torch.arange(log_probs.size(1), device=log_probs.device)
        chosen = steps[None, :] < lengths.to(log_probs.device)[:, None]
        if frames == "non_blank":
            chosen = chosen & (log_probs.argmax(dim=-1) != blank_id)
        return cls(log_probs, chosen)


def distillation_loss(student_log_probs: torch.Tensor, teacher: Teacher) -> torch.Tensor:
    """``sum over the teacher's frames of KL(teacher || student) / batch size``.

    Zero exactly when the student's posteriors equal the teacher's on those frames; the
    teacher is detached, so the gradient reaches the student only.
    """
    if student_log_probs.shape != teacher.log_probs.shape:
        raise ValueError(f"student log-posteriors {tuple(student_log_probs.shape)} do not match the teacher's "
                         f"{tuple(teacher.log_probs.shape)}")
    per_frame = torch.nn.functional.kl_div(student_log_probs, teacher.log_probs, reduction="none",
                                           log_target=True).sum(dim=-1)
    return per_frame.masked_fill(~teacher.frames, 0.0).sum() / student_log_probs.size(0)
