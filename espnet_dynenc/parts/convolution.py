"""Conformer convolution module with a free channel count and a padding mask."""
from typing import Optional

import torch

CONV_NORMS = ("batch_norm", "layer_norm")


class ConvolutionModule(torch.nn.Module):
    """Pointwise conv + GLU, depthwise conv, norm, activation, pointwise conv.

    Same parameters and names as ESPnet's ``ConvolutionModule``, with three differences:

    * ``channels`` (the GLU output width) may differ from ``d_model``;
    * padded frames are zeroed before the depthwise convolution, so a padded frame
      never leaks into the last valid frames of an utterance: a batched forward gives
      each utterance the output of its own unbatched forward (espnet 202511's module
      does not do this);
    * ``norm`` may be ``layer_norm`` (over the channels of each frame, as the Dynamic
      Encoder Size authors' i6_models conformer) instead of ESPnet's ``batch_norm``.
      Batch statistics depend on which units ran before the module, so in a supernet
      whose subnets skip units a batch norm's running statistics mix those of every
      subnet; a layer norm has no statistics to mix.

    Args:
        d_model: input and output dimension.
        channels: channels of the depthwise convolution (> 0).
        kernel_size: odd depthwise kernel size ("same" padding).
        activation: activation module after the batch norm.
        bias: whether the convolutions have biases.
        norm: ``batch_norm`` (ESPnet) or ``layer_norm``.
    """

    def __init__(
        self,
        d_model: int,
        channels: int,
        kernel_size: int,
        activation: torch.nn.Module,
        bias: bool = True,
        norm: str = "batch_norm",
    ):
        super().__init__()
        if norm not in CONV_NORMS:
            raise ValueError(f"ConvolutionModule: conv_norm must be one of {CONV_NORMS}, got '{norm}'")
        if channels <= 0:
            raise ValueError(f"ConvolutionModule: channels must be > 0, got {channels}")
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvolutionModule: cnn_module_kernel must be odd, got {kernel_size}")
        self.pointwise_conv1 = torch.nn.Conv1d(d_model, 2 * channels, kernel_size=1, bias=bias)
        self.depthwise_conv = torch.nn.Conv1d(
            channels,
            channels,
            kernel_size,
            padding=(kernel_size - 1) // 2,
            groups=channels,
            bias=bias,
        )
        self.norm_kind = norm
        self.norm = torch.nn.BatchNorm1d(channels) if norm == "batch_norm" else torch.nn.LayerNorm(channels)
        self.pointwise_conv2 = torch.nn.Conv1d(channels, d_model, kernel_size=1, bias=bias)
        self.activation = activation

    @property
    def width(self) -> int:
        return self.depthwise_conv.in_channels

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: x (batch, time, d_model); pad_mask (batch, time), True on padded frames."""
        x = self.pointwise_conv1(x.transpose(1, 2))
        x = torch.nn.functional.glu(x, dim=1)  # value rows [:c], gate rows [c:]
        if pad_mask is not None:
            x = x.masked_fill(pad_mask.unsqueeze(1), 0.0)
        x = self.depthwise_conv(x)
        if self.norm_kind == "batch_norm":
            x = self.norm(x)
        else:
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        x = self.activation(x)
        return self.pointwise_conv2(x).transpose(1, 2)
