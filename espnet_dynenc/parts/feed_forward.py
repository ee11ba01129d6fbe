"""Position-wise feed-forward module with a free hidden width."""
import torch


class FeedForward(torch.nn.Module):
    """``w_2(dropout(activation(w_1(x))))``, as ESPnet's ``PositionwiseFeedForward``.

    Args:
        d_model: input and output dimension.
        hidden_units: width of the hidden layer (> 0; a width-0 module is not built,
            the encoder treats it as an identity unit instead).
        dropout_rate: dropout after the activation.
        activation: activation module (ESPnet's ``get_activation``).
    """

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(self.activation(self.w_1(x))))
