"""Multi-head self-attention with a free number of heads.

Three position schemes, matching ESPnet's attention classes parameter for parameter:

* ``"abs"``: plain scaled dot-product attention (``MultiHeadedAttention``), positions
  are added to the input by the encoder's frontend;
* ``"rel"``: Transformer-XL relative positions (``RelPositionMultiHeadedAttention``,
  ESPnet ``rel_pos_type: latest``; ``pos_emb`` covers offsets ``T-1 .. -(T-1)``);
* ``"legacy_rel"``: ESPnet's older variant (``LegacyRelPositionMultiHeadedAttention``,
  ``rel_pos_type: legacy``; ``pos_emb`` covers ``T`` positions).
"""
import math
from typing import Optional

import torch

POSITION_SCHEMES = ("abs", "rel", "legacy_rel")


class MultiHeadSelfAttention(torch.nn.Module):
    """Self-attention whose query/key/value width is ``num_heads * head_dim``.

    Args:
        d_model: input and output dimension.
        num_heads: number of heads (> 0).
        head_dim: dimension of one head (ESPnet: ``output_size // attention_heads``).
        dropout_rate: dropout on the attention weights.
        position_scheme: one of ``POSITION_SCHEMES``.
        zero_triu: relative schemes only: zero the upper triangle of the position scores.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int,
        dropout_rate: float,
        position_scheme: str = "rel",
        zero_triu: bool = False,
    ):
        super().__init__()
        if num_heads <= 0:
            raise ValueError(f"MultiHeadSelfAttention: num_heads must be > 0, got {num_heads}")
        if position_scheme not in POSITION_SCHEMES:
            raise ValueError(
                f"MultiHeadSelfAttention: position_scheme must be one of {POSITION_SCHEMES}, "
                f"got '{position_scheme}'"
            )
        inner = num_heads * head_dim
        self.h = num_heads
        self.d_k = head_dim
        self.position_scheme = position_scheme
        self.zero_triu = zero_triu
        self.linear_q = torch.nn.Linear(d_model, inner)
        self.linear_k = torch.nn.Linear(d_model, inner)
        self.linear_v = torch.nn.Linear(d_model, inner)
        self.linear_out = torch.nn.Linear(inner, d_model)
        self.dropout = torch.nn.Dropout(dropout_rate)
        if position_scheme != "abs":
            self.linear_pos = torch.nn.Linear(d_model, inner, bias=False)
            self.pos_bias_u = torch.nn.Parameter(torch.empty(num_heads, head_dim))
            self.pos_bias_v = torch.nn.Parameter(torch.empty(num_heads, head_dim))
            torch.nn.init.xavier_uniform_(self.pos_bias_u)
            torch.nn.init.xavier_uniform_(self.pos_bias_v)

    @property
    def width(self) -> int:
        return self.h

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, pos_emb: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Args: x (batch, time, d_model); mask (batch, 1, time), True on valid frames;
        pos_emb (1, positions, d_model) for the relative schemes."""
        batch, time, _ = x.shape
        q = self.linear_q(x).view(batch, time, self.h, self.d_k)
        k = self.linear_k(x).view(batch, time, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(batch, time, self.h, self.d_k).transpose(1, 2)
        if self.position_scheme == "abs":
            scores = torch.matmul(q.transpose(1, 2), k.transpose(-2, -1))
        else:
            if pos_emb is None:
                raise ValueError("relative-position attention needs pos_emb")
            p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)
            content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
            position = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
            scores = content + self._relative_shift(position)
        scores = scores / math.sqrt(self.d_k)
        return self.linear_out(self._attend(scores, v, mask))

    def _attend(self, scores: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padded = ~mask.unsqueeze(1)  # (batch, 1, 1, time)
        scores = scores.masked_fill(padded, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).masked_fill(padded, 0.0)
        context = torch.matmul(self.dropout(weights), v)  # (batch, head, time, d_k)
        batch, _, time, _ = context.shape
        return context.transpose(1, 2).reshape(batch, time, self.h * self.d_k)

    def _relative_shift(self, x: torch.Tensor) -> torch.Tensor:
        """Turn scores per relative offset into scores per (query, key) pair.

        Row i of ``x`` holds offsets in the order of ``pos_emb``; prepending a zero column
        and re-reading the buffer with one more column per row moves row i left by i.
        """
        b, h, t1, n = x.shape
        padded = torch.cat([x.new_zeros(b, h, t1, 1), x], dim=-1).view(b, h, n + 1, t1)
        shifted = padded[:, :, 1:].reshape(b, h, t1, n)
        if self.position_scheme == "rel":
            shifted = shifted[..., : n // 2 + 1]  # keys 0 .. T-1
        if self.zero_triu:
            keep = torch.tril(torch.ones(t1, shifted.size(-1), device=x.device), shifted.size(-1) - t1)
            shifted = shifted * keep
        return shifted
