"""Position-wise feed-forward modules with a free hidden width.

ESPnet's Conformer has three (``positionwise_layer_type``):

* ``linear``: ``PositionwiseFeedForward``, two linear layers with the encoder's
  activation between them (:class:`FeedForward`);
* ``conv1d``: ``MultiLayeredConv1d``, two 1-D convolutions over time of kernel
  ``positionwise_conv_kernel_size`` (:class:`ConvFeedForward`);
* ``conv1d-linear``: ``Conv1dLinear``, the same convolution then a linear layer
  (:class:`ConvFeedForward` with ``linear_output``).

ESPnet applies ReLU in the two convolutional variants whatever ``activation_type``
says, and so do these. All three keep ESPnet's parameter names (``w_1``, ``w_2``) and
lay the hidden units out along the same axes (rows of ``w_1``, input columns of
``w_2``), so DMAO's groups are the same for each.
"""
from typing import Optional

import torch

FFN_LAYER_TYPES = ("linear", "conv1d", "conv1d-linear")


class FeedForward(torch.nn.Module):
    """``w_2(dropout(activation(w_1(x))))``, as ESPnet's ``PositionwiseFeedForward``.

    Args:
        d_model: input and output dimension.
        hidden_units: width of the hidden layer (> 0; a width-0 module is not built,
            the encoder treats it as an identity unit instead).
        dropout_rate: dropout after the activation.
        activation: activation module (ESPnet's ``get_activation``).
    """

    layer_type = "linear"

    def __init__(self, d_model: int, hidden_units: int, dropout_rate: float, activation: torch.nn.Module):
        super().__init__()
        if hidden_units <= 0:
            raise ValueError(f"FeedForward: hidden_units must be > 0, got {hidden_units}")
        self.w_1 = torch.nn.Linear(d_model, hidden_units)
        self.w_2 = torch.nn.Linear(hidden_units, d_model)
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.activation = activation

    @property
    def width(self) -> int:
        return self.w_1.out_features

    @property
    def d_model(self) -> int:
        return self.w_1.in_features

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: x (batch, time, d_model); ``pad_mask`` is unused (every frame is on its own)."""
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


class ConvFeedForward(torch.nn.Module):
    """``w_2(dropout(relu(w_1(x))))`` with ``w_1`` a convolution over time.

    ``w_1`` is a ``Conv1d(d_model, hidden_units, kernel_size)`` with "same" padding;
    ``w_2`` is a convolution of the same kernel back to ``d_model`` (ESPnet's
    ``MultiLayeredConv1d``, ``positionwise_layer_type: conv1d``) or, with
    ``linear_output``, a ``Linear(hidden_units, d_model)`` (ESPnet's ``Conv1dLinear``,
    ``conv1d-linear``). Same parameters and names as ESPnet's, with one difference, as
    in :class:`~espnet_dynenc.parts.convolution.ConvolutionModule`: padded frames are
    zeroed before each convolution of kernel > 1, so a padded frame never reaches a
    valid one and a batched forward gives each utterance its unbatched output (ESPnet's
    modules let the padding in). Without padding the two compute the same.

    Args:
        d_model: input and output dimension.
        hidden_units: hidden channels (> 0).
        kernel_size: odd kernel size of the convolutions (ESPnet's
            ``positionwise_conv_kernel_size``; an even one would shorten the sequence).
        dropout_rate: dropout after the ReLU.
        linear_output: ``w_2`` is a linear layer (``conv1d-linear``) instead of a
            convolution (``conv1d``).
    """

    def __init__(self, d_model: int, hidden_units: int, kernel_size: int, dropout_rate: float,
                 linear_output: bool = False):
        super().__init__()
        if hidden_units <= 0:
            raise ValueError(f"ConvFeedForward: hidden_units must be > 0, got {hidden_units}")
        if kernel_size <= 0 or kernel_size % 2 != 1:
            raise ValueError(
                f"ConvFeedForward: positionwise_conv_kernel_size must be odd and > 0, got {kernel_size}"
            )
        padding = (kernel_size - 1) // 2
        self.w_1 = torch.nn.Conv1d(d_model, hidden_units, kernel_size, padding=padding)
        if linear_output:
            self.w_2 = torch.nn.Linear(hidden_units, d_model)
        else:
            self.w_2 = torch.nn.Conv1d(hidden_units, d_model, kernel_size, padding=padding)
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.kernel_size = kernel_size
        self.linear_output = linear_output

    @property
    def layer_type(self) -> str:
        return "conv1d-linear" if self.linear_output else "conv1d"

    @property
    def width(self) -> int:
        return self.w_1.out_channels

    @property
    def d_model(self) -> int:
        return self.w_1.in_channels

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: x (batch, time, d_model); pad_mask (batch, time), True on padded frames."""
        mask = pad_mask.unsqueeze(1) if pad_mask is not None and self.kernel_size > 1 else None
        h = x.transpose(1, 2)  # (batch, d_model, time)
        if mask is not None:
            h = h.masked_fill(mask, 0.0)
        h = self.dropout(torch.relu(self.w_1(h)))  # (batch, hidden, time)
        if self.linear_output:
            return self.w_2(h.transpose(1, 2))
        if mask is not None:
            h = h.masked_fill(mask, 0.0)
        return self.w_2(h).transpose(1, 2)


def build_feed_forward(
    layer_type: str,
    d_model: int,
    hidden_units: int,
    dropout_rate: float,
    activation: torch.nn.Module,
    kernel_size: int,
) -> torch.nn.Module:
    """The feed-forward module of ESPnet's ``positionwise_layer_type`` (``activation``
    applies to ``linear`` only, ``kernel_size`` to the convolutional types only)."""
    if layer_type == "linear":
        return FeedForward(d_model, hidden_units, dropout_rate, activation)
    if layer_type in ("conv1d", "conv1d-linear"):
        return ConvFeedForward(d_model, hidden_units, kernel_size, dropout_rate, layer_type == "conv1d-linear")
    raise ValueError(f"positionwise_layer_type must be one of {FFN_LAYER_TYPES}, got '{layer_type}'")
