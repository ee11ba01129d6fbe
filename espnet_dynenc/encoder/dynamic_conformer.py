"""``dynamic_conformer``: ESPnet's Conformer encoder with prunable, resizable units."""
import logging
from dataclasses import dataclass
from typing import Collection, Dict, List, Optional, Sequence, Tuple, Union

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet.nets.pytorch_backend.nets_utils import get_activation, make_pad_mask
from espnet.nets.pytorch_backend.transformer.embedding import (
    LegacyRelPositionalEncoding,
    PositionalEncoding,
    RelPositionalEncoding,
    ScaledPositionalEncoding,
)
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet.nets.pytorch_backend.transformer.subsampling import (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
    check_short_utt,
)
from typeguard import typechecked

from espnet_dynenc.encoder.block import AttentionInputs, DynamicConformerBlock, Multiplier
from espnet_dynenc.encoder.layout import UnitSpec, build_block_widths, build_unit_specs, default_unit_order
from espnet_dynenc.parts.convolution import CONV_NORMS, ConvolutionModule
from espnet_dynenc.parts.dropout import last_dropout_rate, scaled_dropout
from espnet_dynenc.parts.feed_forward import FFN_LAYER_TYPES, build_feed_forward
from espnet_dynenc.parts.self_attention import MultiHeadSelfAttention
from espnet_dynenc.parts.stochastic_depth import MODES, depth_schedule, keep_scale

_SUBSAMPLING = {
    "conv2d": Conv2dSubsampling,
    "conv2d1": Conv2dSubsampling1,
    "conv2d2": Conv2dSubsampling2,
    "conv2d6": Conv2dSubsampling6,
    "conv2d8": Conv2dSubsampling8,
}

SubnetMask = Optional[Union[Sequence[bool], Sequence[int], torch.Tensor]]


@dataclass
class EmbeddedInput:
    """The subsampling frontend's output, shared by every subnet of one update."""

    xs: torch.Tensor  # (batch, time, d_model)
    pos_emb: Optional[torch.Tensor]
    masks: torch.Tensor  # (batch, 1, time), True on valid frames
    # the frontend's dropout rate, not applied yet: each pass of the blocks applies it at
    # its own rate (see ``forward_frontend(defer_dropout=True)``)
    pending_dropout: float = 0.0


class DynamicConformerEncoder(AbsEncoder):
    """Conformer encoder whose units (modules) can be pruned, gated or resized.

    Takes every argument of ESPnet's ``ConformerEncoder`` (same meaning, same defaults,
    same parameter names in the state dict) plus the knobs below. With all units kept
    and ESPnet's unit order it computes what ``ConformerEncoder`` computes, except that
    the convolution module, and the feed-forward modules of ``positionwise_layer_type``
    ``conv1d`` / ``conv1d-linear`` with a kernel > 1, mask padding. Those two types use
    ReLU whatever ``activation_type`` says, as ESPnet's ``MultiLayeredConv1d`` and
    ``Conv1dLinear`` do; their hidden channels are resized like a ``linear`` FFN's
    hidden units.

    Args (new; ESPnet's are documented in ``ConformerEncoder``):
        unit_order: modules of a block in order, from ``ffn``, ``mhsa``, ``conv``;
            default follows ``macaron_style`` / ``use_cnn_module``
            (``[ffn, mhsa, conv, ffn]`` for a macaron Conformer).
        unit_scales: residual scale per unit of a block (default 0.5 for the two
            macaron FFNs, else 1.0).
        block_widths: one dict per block overriding a module's width by name
            (``feed_forward_macaron``/``feed_forward``: hidden units, ``self_attn``:
            heads, ``conv_module``: channels); 0 removes the module (identity unit).
        conv_channels: default conv module channels (default ``output_size``).
        conv_norm: the conv module's norm, ``batch_norm`` (ESPnet's) or ``layer_norm``
            (the Dynamic Encoder Size authors'; no running statistics shared by subnets
            that skip different units, see ``parts/convolution.py``).
        attention_head_dim: width of one head (default ``output_size // attention_heads``).
        final_norm: whether each block ends with ``norm_final`` (default: with the conv
            module, as ESPnet does).
        stochastic_depth_schedule: ``constant`` or ``linear`` (block l of L gets
            ``rate * l / L``) when ``stochastic_depth_rate`` is a float.
        stochastic_depth_mode: ``batch`` (one draw per block per batch, ESPnet) or
            ``utterance`` (one draw per block per utterance).
    """

    @typechecked
    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 2048,
        num_blocks: int = 6,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        input_layer: Optional[str] = "conv2d",
        normalize_before: bool = True,
        concat_after: bool = False,
        positionwise_layer_type: str = "linear",
        positionwise_conv_kernel_size: int = 3,
        macaron_style: bool = False,
        rel_pos_type: str = "legacy",
        pos_enc_layer_type: str = "rel_pos",
        selfattention_layer_type: str = "rel_selfattn",
        activation_type: str = "swish",
        use_cnn_module: bool = True,
        zero_triu: bool = False,
        cnn_module_kernel: int = 31,
        padding_idx: int = -1,
        interctc_layer_idx: List[int] = [],
        interctc_use_conditioning: bool = False,
        ctc_trim: bool = False,
        stochastic_depth_rate: Union[float, List[float]] = 0.0,
        layer_drop_rate: float = 0.0,
        max_pos_emb_len: int = 5000,
        qk_norm: bool = False,
        use_flash_attn: bool = True,
        unit_order: Optional[List[str]] = None,
        unit_scales: Optional[List[float]] = None,
        block_widths: Optional[List[Optional[Dict[str, int]]]] = None,
        conv_channels: Optional[int] = None,
        conv_norm: str = "batch_norm",
        attention_head_dim: Optional[int] = None,
        final_norm: Optional[bool] = None,
        stochastic_depth_schedule: str = "constant",
        stochastic_depth_mode: str = "batch",
    ):
        super().__init__()
        _reject_unsupported(concat_after, positionwise_layer_type, qk_norm, ctc_trim)
        if positionwise_layer_type != "linear" and (
            positionwise_conv_kernel_size <= 0 or positionwise_conv_kernel_size % 2 != 1
        ):
            raise ValueError(
                f"positionwise_conv_kernel_size must be odd and > 0 for positionwise_layer_type="
                f"'{positionwise_layer_type}', got {positionwise_conv_kernel_size}"
            )
        position_scheme, pos_enc_class = _position_scheme(rel_pos_type, pos_enc_layer_type, selfattention_layer_type)
        if num_blocks <= 0:
            raise ValueError(f"num_blocks must be > 0, got {num_blocks}")
        if attention_head_dim is None:
            if attention_heads <= 0 or output_size % attention_heads != 0:
                raise ValueError(
                    f"attention_heads={attention_heads} does not divide output_size={output_size} "
                    "(set attention_head_dim to use heads of another width)"
                )
            attention_head_dim = output_size // attention_heads
        if conv_norm not in CONV_NORMS:
            raise ValueError(f"conv_norm must be one of {CONV_NORMS}, got '{conv_norm}'")
        if stochastic_depth_mode not in MODES:
            raise ValueError(f"stochastic_depth_mode must be one of {MODES}, got '{stochastic_depth_mode}'")
        if not 0.0 <= layer_drop_rate < 1.0:
            raise ValueError(f"layer_drop_rate must be in [0, 1), got {layer_drop_rate}")
        for idx in interctc_layer_idx:
            if not 0 < idx < num_blocks:
                raise ValueError(f"interctc_layer_idx: {idx} is not a block index in 1..{num_blocks - 1}")

        self._output_size = output_size
        self.input_size = input_size
        self.normalize_before = normalize_before
        self.embed = _build_input_layer(
            input_layer, input_size, output_size, dropout_rate,
            pos_enc_class(output_size, positional_dropout_rate, max_pos_emb_len), padding_idx,
        )
        order = unit_order if unit_order is not None else default_unit_order(macaron_style, use_cnn_module)
        self.unit_specs: List[UnitSpec] = build_unit_specs(order, unit_scales, macaron_style, use_cnn_module)
        defaults = {
            "ffn": linear_units,
            "mhsa": attention_heads,
            "conv": output_size if conv_channels is None else conv_channels,
        }
        self.block_widths = build_block_widths(self.unit_specs, num_blocks, defaults, block_widths)
        activation = get_activation(activation_type)

        def make_module(spec: UnitSpec, width: int) -> torch.nn.Module:
            if spec.kind == "ffn":
                return build_feed_forward(
                    positionwise_layer_type, output_size, width, dropout_rate, activation,
                    positionwise_conv_kernel_size,
                )
            if spec.kind == "mhsa":
                return MultiHeadSelfAttention(
                    output_size, width, attention_head_dim, attention_dropout_rate, position_scheme, zero_triu
                )
            return ConvolutionModule(output_size, width, cnn_module_kernel, activation, norm=conv_norm)

        with_final_norm = use_cnn_module if final_norm is None else final_norm
        self.encoders = torch.nn.ModuleList(
            DynamicConformerBlock(
                output_size, self.unit_specs, widths, make_module, dropout_rate, normalize_before, with_final_norm
            )
            for widths in self.block_widths
        )
        self.after_norm = LayerNorm(output_size) if normalize_before else None
        self.block_drop_rates = depth_schedule(stochastic_depth_rate, num_blocks, stochastic_depth_schedule)
        self.stochastic_depth_mode = stochastic_depth_mode
        self.layer_drop_rate = layer_drop_rate
        self.interctc_layer_idx = list(interctc_layer_idx)
        self.interctc_use_conditioning = interctc_use_conditioning
        self.conditioning_layer = None  # set by ESPnetASRModel when conditioning is used

    # ------------------------------------------------------------------ structure
    def output_size(self) -> int:
        return self._output_size

    @property
    def num_blocks(self) -> int:
        return len(self.encoders)

    @property
    def units_per_block(self) -> int:
        return len(self.unit_specs)

    @property
    def num_units(self) -> int:
        """L: the number of prunable units (blocks x modules per block)."""
        return self.num_blocks * self.units_per_block

    def unit_name(self, unit: int) -> str:
        """A readable name for unit ``u``, e.g. ``block3.conv_module``."""
        block, position = divmod(unit, self.units_per_block)
        return f"block{block}.{self.unit_specs[position].module_name}"

    def unit_kinds(self) -> List[str]:
        """Kind (``ffn``/``mhsa``/``conv``) of every unit, in unit order."""
        return [spec.kind for _ in range(self.num_blocks) for spec in self.unit_specs]

    def subnet_mask(self, subnet: SubnetMask) -> Tuple[bool, ...]:
        """Normalise a subnet (None = all units; bools, 0/1 or a tensor) to a tuple of bools."""
        if subnet is None:
            return (True,) * self.num_units
        if isinstance(subnet, torch.Tensor):
            subnet = subnet.tolist()
        mask = tuple(bool(v) for v in subnet)
        if len(mask) != self.num_units:
            raise ValueError(
                f"subnet mask has {len(mask)} entries, but the encoder has {self.num_units} units "
                f"({self.num_blocks} blocks x {self.units_per_block} modules)"
            )
        return mask

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor = None,
        masks: torch.Tensor = None,
        ctc: CTC = None,
        return_all_hs: bool = False,
        subnet: SubnetMask = None,
        unit_gates: Optional[torch.Tensor] = None,
        unit_drop_rates: Optional[Sequence[float]] = None,
        skip_blocks: Optional[Collection[int]] = None,
    ):
        """Encode; same inputs and outputs as ESPnet's ``ConformerEncoder.forward``.

        Args (new):
            subnet: units to keep (length ``num_units``); pruned units are not computed.
            unit_gates: (num_units,) multipliers on the units' outputs (learned selection).
            unit_drop_rates: per-unit row-wise stochastic depth rates (training only).
            skip_blocks: 0-based blocks removed entirely (no ``norm_final`` either).
        """
        embedded = self.forward_frontend(xs_pad, ilens, masks)
        return self.forward_blocks(
            embedded, subnet, unit_gates, unit_drop_rates, skip_blocks, ctc=ctc, return_all_hs=return_all_hs
        )

    def forward_frontend(
        self, xs_pad: torch.Tensor, ilens: torch.Tensor, masks: Optional[torch.Tensor] = None,
        defer_dropout: bool = False,
    ) -> EmbeddedInput:
        """Subsampling and positional encoding: the part every subnet shares.

        ``defer_dropout`` (training): run the input layer without its dropout and leave the
        rate of its last one (the positional encoding's, on frames and relative positions)
        to each pass of :meth:`forward_blocks`, so that passes may see different dropout
        (``supernet_ctc``'s ``pass_regularization``). The input layer ``linear`` has one more
        dropout before its positional encoding; deferred, it is left out.
        """
        if defer_dropout and self.training:
            with scaled_dropout(self.embed, 0.0):
                embedded = self.forward_frontend(xs_pad, ilens, masks)
            embedded.pending_dropout = last_dropout_rate(self.embed)
            return embedded
        if masks is None:
            masks = (~make_pad_mask(ilens)[:, None, :]).to(xs_pad.device)
        else:
            masks = ~masks[:, None, :]
        if isinstance(self.embed, tuple(_SUBSAMPLING.values())):
            too_short, limit = check_short_utt(self.embed, xs_pad.size(1))
            if too_short:
                raise TooShortUttError(
                    f"has {xs_pad.size(1)} frames and is too short for subsampling "
                    f"(it needs more than {limit} frames), return empty results",
                    xs_pad.size(1),
                    limit,
                )
            xs, _ = self.embed(xs_pad, masks)
            masks = self._subsampled_masks(ilens.to(xs_pad.device), _first(xs).size(1))
        else:
            xs = self.embed(xs_pad)
        xs, pos_emb = xs if isinstance(xs, tuple) else (xs, None)
        return EmbeddedInput(xs, pos_emb, masks)

    def _subsampled_masks(self, ilens: torch.Tensor, out_frames: int) -> torch.Tensor:
        """Valid-frame masks after the conv subsampling, from the convolutions' arithmetic.

        ESPnet slices the input mask instead, which counts one frame too many for some
        padded utterances (a frame whose receptive field reaches into the padding), so a
        batched forward would differ from an unbatched one.
        """
        return ~make_pad_mask(self.subsampled_lengths(ilens), maxlen=out_frames)[:, None, :]

    def subsampled_lengths(self, ilens: torch.Tensor) -> torch.Tensor:
        """Valid frames after the input layer: the convolutions' arithmetic (other input
        layers keep every frame). The ONNX export computes its masks from these too."""
        if not isinstance(self.embed, tuple(_SUBSAMPLING.values())):
            return ilens
        lens = ilens
        for layer in self.embed.conv:
            if isinstance(layer, torch.nn.Conv2d):
                k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
                lens = torch.div(lens + 2 * p - k, s, rounding_mode="floor") + 1
        return lens

    def forward_blocks(
        self,
        embedded: EmbeddedInput,
        subnet: SubnetMask = None,
        unit_gates: Optional[torch.Tensor] = None,
        unit_drop_rates: Optional[Sequence[float]] = None,
        skip_blocks: Optional[Collection[int]] = None,
        ctc: Optional[CTC] = None,
        return_all_hs: bool = False,
        dropout_scale: float = 1.0,
        stochastic_depth: bool = True,
    ):
        """Run the blocks of one subnet on a shared frontend output.

        ``dropout_scale`` multiplies every dropout rate of this pass (the blocks' and a
        deferred frontend dropout, see :meth:`forward_frontend`); ``stochastic_depth`` False
        turns off block stochastic depth and layer drop for this pass (``unit_drop_rates``
        are the caller's to give or not).
        """
        mask = self.subnet_mask(subnet)
        skip = self._checked_skip_blocks(skip_blocks)
        if unit_gates is not None and unit_gates.shape != (self.num_units,):
            raise ValueError(f"unit_gates must have shape ({self.num_units},), got {tuple(unit_gates.shape)}")
        if unit_drop_rates is not None and len(unit_drop_rates) != self.num_units:
            raise ValueError(f"unit_drop_rates has {len(unit_drop_rates)} entries, expected {self.num_units}")
        x, masks, pos_emb = embedded.xs, embedded.masks, embedded.pos_emb
        if embedded.pending_dropout > 0 and self.training:
            rate = embedded.pending_dropout * dropout_scale
            x = torch.nn.functional.dropout(x, rate, True)
            pos_emb = None if pos_emb is None else torch.nn.functional.dropout(pos_emb, rate, True)
        pad_mask = ~masks[:, 0, :]
        inputs = AttentionInputs(masks, pad_mask if bool(pad_mask.any()) else None, pos_emb)
        intermediate_outs = []
        per_block = self.units_per_block
        with scaled_dropout(self.encoders, dropout_scale):
            for b, block in enumerate(self.encoders):
                if b not in skip:
                    x = self._run_block(b, block, x, inputs, mask[b * per_block:(b + 1) * per_block], unit_gates,
                                        unit_drop_rates, stochastic_depth)
                if return_all_hs:
                    intermediate_outs.append(x)
                if b + 1 in self.interctc_layer_idx:
                    encoder_out = self.after_norm(x) if self.after_norm is not None else x
                    if not return_all_hs:
                        intermediate_outs.append((b + 1, encoder_out))
                    # Conditioning runs with return_all_hs too, so collected states match inference.
                    if self.interctc_use_conditioning:
                        x = x + self.conditioning_layer(ctc.softmax(encoder_out))
        if self.after_norm is not None:
            x = self.after_norm(x)
        olens = masks.squeeze(1).sum(1)
        if intermediate_outs:
            return (x, intermediate_outs), olens, None
        return x, olens, None

    def _checked_skip_blocks(self, skip_blocks: Optional[Collection[int]]) -> frozenset:
        skip = frozenset(int(b) for b in (skip_blocks or ()))
        for b in skip:
            if not 0 <= b < self.num_blocks:
                raise ValueError(f"skip_blocks: {b} is not a block index in 0..{self.num_blocks - 1}")
        return skip

    def _run_block(
        self,
        b: int,
        block: DynamicConformerBlock,
        x: torch.Tensor,
        inputs: AttentionInputs,
        kept: Sequence[bool],
        unit_gates: Optional[torch.Tensor],
        unit_drop_rates: Optional[Sequence[float]],
        stochastic_depth: bool = True,
    ) -> torch.Tensor:
        block_scale: Multiplier = 1.0
        utterance_keep = None
        if self.training and stochastic_depth:
            if self.layer_drop_rate > 0 and torch.rand(()).item() < self.layer_drop_rate:
                return x
            p = self.block_drop_rates[b]
            if p > 0 and self.stochastic_depth_mode == "batch":
                block_scale = keep_scale(p, x.size(0), "batch", x.device, x.dtype)
                if block_scale == 0.0:
                    return x
            elif p > 0:
                utterance_keep = torch.rand(x.size(0), 1, 1, device=x.device) >= p
                block_scale = 1.0 / (1.0 - p)
        first_unit = b * self.units_per_block
        multipliers = []
        for position, spec in enumerate(block.units):
            u = first_unit + position
            if not kept[position]:
                multipliers.append(None)
                continue
            m: Multiplier = spec.scale * block_scale
            if self.training and unit_drop_rates is not None and unit_drop_rates[u] > 0:
                m = m * keep_scale(float(unit_drop_rates[u]), x.size(0), "utterance", x.device, x.dtype)
            if unit_gates is not None:
                m = m * unit_gates[u]
            multipliers.append(m)
        y = block(x, inputs, multipliers)
        return y if utterance_keep is None else torch.where(utterance_keep, y, x)

    # ------------------------------------------------------------------ size
    def subnet_parameter_count(self, subnet: SubnetMask = None, skip_blocks: Optional[Collection[int]] = None) -> int:
        """Parameters a subnet uses: frontend, kept units, block norms, final norm."""
        mask = self.subnet_mask(subnet)
        skip = self._checked_skip_blocks(skip_blocks)
        modules: List[torch.nn.Module] = [self.embed]
        if self.after_norm is not None:
            modules.append(self.after_norm)
        if self.conditioning_layer is not None:
            modules.append(self.conditioning_layer)
        for b, block in enumerate(self.encoders):
            if b in skip:
                continue
            if block.norm_final is not None:
                modules.append(block.norm_final)
            for position in range(self.units_per_block):
                if mask[b * self.units_per_block + position]:
                    modules.extend(block.unit_modules(position))
        return sum(p.numel() for m in modules for p in m.parameters())


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def _reject_unsupported(concat_after: bool, positionwise_layer_type: str, qk_norm: bool, ctc_trim: bool) -> None:
    if concat_after:
        raise ValueError("dynamic_conformer: concat_after=true is not supported")
    if positionwise_layer_type not in FFN_LAYER_TYPES:
        raise ValueError(
            f"dynamic_conformer: positionwise_layer_type='{positionwise_layer_type}' is not supported "
            f"(choose from {FFN_LAYER_TYPES})"
        )
    if qk_norm:
        raise ValueError("dynamic_conformer: qk_norm=true is not supported")
    if ctc_trim:
        raise ValueError("dynamic_conformer: ctc_trim=true is not supported")


def _position_scheme(rel_pos_type: str, pos_enc_layer_type: str, selfattention_layer_type: str):
    """Map ESPnet's three position options to an attention scheme and an encoding class."""
    if rel_pos_type not in ("legacy", "latest"):
        raise ValueError(f"rel_pos_type must be 'legacy' or 'latest', got '{rel_pos_type}'")
    pos = pos_enc_layer_type
    attn = selfattention_layer_type
    if rel_pos_type == "legacy":
        pos = "legacy_rel_pos" if pos == "rel_pos" else pos
        attn = "legacy_rel_selfattn" if attn == "rel_selfattn" else attn
    schemes = {
        ("abs_pos", "selfattn"): ("abs", PositionalEncoding),
        ("scaled_abs_pos", "selfattn"): ("abs", ScaledPositionalEncoding),
        ("rel_pos", "rel_selfattn"): ("rel", RelPositionalEncoding),
        ("legacy_rel_pos", "legacy_rel_selfattn"): ("legacy_rel", LegacyRelPositionalEncoding),
    }
    if (pos, attn) not in schemes:
        raise ValueError(
            f"pos_enc_layer_type='{pos_enc_layer_type}' with selfattention_layer_type="
            f"'{selfattention_layer_type}' (rel_pos_type='{rel_pos_type}') is not supported; use "
            "rel_pos+rel_selfattn, abs_pos+selfattn or scaled_abs_pos+selfattn"
        )
    if pos == "legacy_rel_pos":
        logging.warning("dynamic_conformer: rel_pos_type 'legacy' is ESPnet's deprecated variant")
    return schemes[(pos, attn)]


def _build_input_layer(
    input_layer: Optional[str],
    input_size: int,
    output_size: int,
    dropout_rate: float,
    pos_enc: torch.nn.Module,
    padding_idx: int,
) -> torch.nn.Module:
    """ESPnet's input layers, built from ESPnet's own classes."""
    if input_layer in _SUBSAMPLING:
        return _SUBSAMPLING[input_layer](input_size, output_size, dropout_rate, pos_enc)
    if input_layer == "linear":
        return torch.nn.Sequential(
            torch.nn.Linear(input_size, output_size),
            torch.nn.LayerNorm(output_size),
            torch.nn.Dropout(dropout_rate),
            pos_enc,
        )
    if input_layer == "embed":
        return torch.nn.Sequential(torch.nn.Embedding(input_size, output_size, padding_idx=padding_idx), pos_enc)
    if input_layer is None:
        return torch.nn.Sequential(pos_enc)
    raise ValueError(
        f"input_layer: unknown value '{input_layer}' (choose from {sorted(_SUBSAMPLING)} + linear, embed, null)"
    )
