"""Conformer convolution module with a free channel count and a padding mask."""
from typing import Optional

import torch


class ConvolutionModule(torch.nn.Module):
    """Pointwise conv + GLU, depthwise conv, batch norm, activation, pointwise conv.

    Same parameters and names as ESPnet's ``ConvolutionModule``, with two differences:

    * ``channels`` (the GLU output width) may differ from ``d_model``;
    * padded frames are zeroed before the depthwise convolution, so a padded frame
      never leaks into the last valid frames of an utterance: a batched forward gives
      each utterance the output of its own unbatched forward (espnet 202511's module
      does not do this).

    Args:
        d_model: input and output dimension.
        channels: channels of the depthwise convolution (> 0).
        kernel_size: odd depthwise kernel size ("same" padding).
        activation: activation module after the batch norm.
        bias: whether the convolutions have biases.
    """

    def __init__(
        self,
        d_model: int,
        channels: int,
        kernel_size: int,
        activation: torch.nn.Module,
        bias: bool = True,
    ):
        super().__init__()
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
        self.norm = torch.nn.BatchNorm1d(channels)
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
        x = self.activation(self.norm(x))
        return self.pointwise_conv2(x).transpose(1, 2)
