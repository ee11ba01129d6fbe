"""Parameters and FLOPs of a subnet, counted on the real modules.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` while the subnet encodes a
reference utterance (matrix products and convolutions: attention, FFNs, convolutions,
subsampling, the mel projection; the STFT and element-wise ops are not counted), divided
by the utterance's duration. Attention grows with length, so the reference duration is
part of the number: 10 s by default, about a LibriSpeech utterance.
"""
from dataclasses import dataclass
from typing import Collection, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

REFERENCE_SECONDS = 10.0


@dataclass(frozen=True)
class SubnetComplexity:
    size: int
    parameters: int
    flops_per_second: float


@torch.no_grad()
def encode_flops(model, size: Optional[int], seconds: float, sample_rate: int, skip_blocks: Collection[int] = ()) -> int:
    """FLOPs of ``model.encode`` plus the CTC output layer for one utterance of ``seconds``."""
    was_training = model.training
    previous = (model._active_size, model._active_skip_blocks)
    model.eval()
    try:
        model.select_subnet(size, skip_blocks)
        speech, lengths = _reference_input(model, seconds, sample_rate)
        with FlopCounterMode(display=False) as counter:
            encoder_out, _ = model.encode(speech, lengths)
            if isinstance(encoder_out, tuple):
                encoder_out = encoder_out[0]
            model.ctc.log_softmax(encoder_out)
        return int(counter.get_total_flops())
    finally:
        model.select_subnet(*previous)
        model.train(was_training)


def subnet_complexity(
    model, size: Optional[int] = None, seconds: float = REFERENCE_SECONDS, sample_rate: int = 16000,
    skip_blocks: Collection[int] = (),
) -> SubnetComplexity:
    """Parameters and FLOPs per second of audio of subnet ``size`` (None: the supernet)."""
    size = model.supernet_size if size is None else size
    flops = encode_flops(model, size, seconds, sample_rate, skip_blocks)
    return SubnetComplexity(size, model.subnet_parameter_count(size, skip_blocks), flops / seconds)


@torch.no_grad()
def model_complexity(model, seconds: float = REFERENCE_SECONDS, sample_rate: int = 16000) -> SubnetComplexity:
    """Parameters and FLOPs per second of audio of a one-size CTC model (an exported size);
    ``size`` is the number of units its encoder computes."""
    was_training = model.training
    model.eval()
    try:
        speech, lengths = _reference_input(model, seconds, sample_rate)
        with FlopCounterMode(display=False) as counter:
            encoder_out, _ = model.encode(speech, lengths)
            if isinstance(encoder_out, tuple):
                encoder_out = encoder_out[0]
            model.ctc.log_softmax(encoder_out)
        flops = int(counter.get_total_flops())
    finally:
        model.train(was_training)
    parameters = sum(p.numel() for p in model.parameters())
    return SubnetComplexity(count_units(model.encoder), parameters, flops / seconds)


UNIT_MODULES = ("feed_forward_macaron", "self_attn", "conv_module", "feed_forward")


def count_units(encoder) -> int:
    """Modules the blocks compute (ESPnet's attribute names; absent or width-0 ones are None)."""
    return sum(getattr(block, name, None) is not None for block in encoder.encoders for name in UNIT_MODULES)


def _reference_input(model, seconds: float, sample_rate: int):
    device = next(model.parameters()).device
    if model.frontend is not None:
        num_samples = int(round(seconds * sample_rate))
        return torch.zeros(1, num_samples, device=device), torch.tensor([num_samples], device=device)
    # Features come from the data loader: assume ESPnet's usual 10 ms frame shift.
    num_frames = int(round(seconds * 100))
    feats = torch.zeros(1, num_frames, model.encoder.input_size, device=device)
    return feats, torch.tensor([num_frames], device=device)
