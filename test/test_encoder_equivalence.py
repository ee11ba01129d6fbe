"""dynamic_conformer computes what ESPnet's ConformerEncoder computes, from the same weights."""
import pytest
import torch
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder

from espnet_dynenc.encoder import DynamicConformerEncoder

BASE = dict(output_size=32, attention_heads=4, linear_units=48, num_blocks=3, cnn_module_kernel=7)
CONFIGS = {
    "macaron_latest": dict(macaron_style=True, rel_pos_type="latest"),
    "macaron_legacy": dict(macaron_style=True, rel_pos_type="legacy"),
    "no_macaron": dict(macaron_style=False, rel_pos_type="latest"),
    "interctc": dict(macaron_style=True, rel_pos_type="latest", interctc_layer_idx=[1, 2]),
    "transformer": dict(use_cnn_module=False, pos_enc_layer_type="abs_pos", selfattention_layer_type="selfattn"),
    "post_norm": dict(macaron_style=True, rel_pos_type="latest", normalize_before=False),
    "conv2d6_relu": dict(macaron_style=True, rel_pos_type="latest", input_layer="conv2d6", activation_type="relu"),
    "zero_triu": dict(macaron_style=True, rel_pos_type="latest", zero_triu=True),
}
CONV_FFN_TYPES = ("conv1d", "conv1d-linear")
# ESPnet's convolutional FFNs, macaron or not; the encoder's activation (swish) must not reach them.
for _type in CONV_FFN_TYPES:
    for _macaron in (True, False):
        CONFIGS[f"{_type}_{'macaron' if _macaron else 'no_macaron'}"] = dict(
            macaron_style=_macaron, rel_pos_type="latest", positionwise_layer_type=_type,
            positionwise_conv_kernel_size=5)
    CONFIGS[f"{_type}_kernel1_post_norm"] = dict(
        macaron_style=True, rel_pos_type="latest", normalize_before=False, positionwise_layer_type=_type,
        positionwise_conv_kernel_size=1)


def _pair(config):
    torch.manual_seed(0)
    stock = ConformerEncoder(20, **BASE, **config).eval()
    # Randomise norms and biases too, so equality is not an accident of their init.
    with torch.no_grad():
        for p in stock.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for m in stock.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    dynamic = DynamicConformerEncoder(20, **BASE, **config).eval()
    dynamic.load_state_dict(stock.state_dict(), strict=True)
    return stock, dynamic


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_equals_stock_conformer(name):
    stock, dynamic = _pair(CONFIGS[name])
    x = torch.randn(3, 90, 20)
    lengths = torch.full((3,), 90)  # equal lengths: the stock conv module leaks padding
    with torch.no_grad():
        ref, ref_lens, _ = stock(x, lengths)
        out, out_lens, _ = dynamic(x, lengths)
    assert torch.equal(ref_lens, out_lens)
    if isinstance(ref, tuple):
        ref, ref_inter = ref
        out, out_inter = out
        assert [layer for layer, _ in ref_inter] == [layer for layer, _ in out_inter]
        for (_, a), (_, b) in zip(ref_inter, out_inter):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("ffn_type", ("linear",) + CONV_FFN_TYPES)
def test_stock_state_dict_loads_and_only_new_parameters_are_missing(ffn_type):
    conf = dict(macaron_style=True, rel_pos_type="latest", positionwise_layer_type=ffn_type)
    stock = ConformerEncoder(20, **BASE, **conf)
    dynamic = DynamicConformerEncoder(20, **BASE, **conf)
    result = dynamic.load_state_dict(stock.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys == []
    assert set(stock.state_dict()) == set(dynamic.state_dict())
    for key, value in stock.state_dict().items():
        assert dynamic.state_dict()[key].shape == value.shape, key


def test_unit_order_follows_espnet_switches():
    enc = DynamicConformerEncoder(20, **BASE, macaron_style=True)
    assert [s.module_name for s in enc.unit_specs] == ["feed_forward_macaron", "self_attn", "conv_module", "feed_forward"]
    assert [s.scale for s in enc.unit_specs] == [0.5, 1.0, 1.0, 0.5]
    assert enc.num_units == 12
    transformer = DynamicConformerEncoder(20, **BASE, use_cnn_module=False)
    assert [s.kind for s in transformer.unit_specs] == ["mhsa", "ffn"]
    assert transformer.num_units == 6
    assert transformer.encoders[0].norm_final is None  # as ESPnet: no final norm without conv


def test_configurable_order_and_scales():
    enc = DynamicConformerEncoder(20, **BASE, macaron_style=True, unit_order=["ffn", "conv", "mhsa", "ffn"],
                                  unit_scales=[0.5, 1.0, 1.0, 0.5])
    assert [s.kind for s in enc.unit_specs] == ["ffn", "conv", "mhsa", "ffn"]
    assert enc.unit_name(5) == "block1.conv_module"
    out, _, _ = enc(torch.randn(2, 40, 20), torch.tensor([40, 33]))
    assert out.shape == (2, 9, 32)


@pytest.mark.parametrize("ffn_type", ("linear",) + CONV_FFN_TYPES)
@pytest.mark.parametrize("macaron_style", [True, False])
def test_pruned_feed_forward_equals_stock_with_that_module_zeroed(ffn_type, macaron_style):
    """Masking FFN units off == ESPnet's encoder whose FFNs there output zero (w_2 zeroed)."""
    config = dict(macaron_style=macaron_style, rel_pos_type="latest", positionwise_layer_type=ffn_type,
                  positionwise_conv_kernel_size=3)
    stock, dynamic = _pair(config)
    names = [spec.module_name for spec in dynamic.unit_specs]
    pruned = [(0, "feed_forward"), (2, "feed_forward_macaron" if macaron_style else "feed_forward")]
    mask = [True] * dynamic.num_units
    for block, name in pruned:
        mask[block * len(names) + names.index(name)] = False
        with torch.no_grad():
            getattr(stock.encoders[block], name).w_2.weight.zero_()
            getattr(stock.encoders[block], name).w_2.bias.zero_()
    x = torch.randn(2, 90, 20)
    lengths = torch.full((2,), 90)
    with torch.no_grad():
        ref, _, _ = stock(x, lengths)
        out, _, _ = dynamic(x, lengths, subnet=mask)
        full, _, _ = dynamic(x, lengths)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert not torch.allclose(full, ref, atol=1e-3)  # the pruned units did contribute


@pytest.mark.parametrize("ffn_type", CONV_FFN_TYPES)
def test_conv_feed_forward_ignores_the_activation_and_rejects_even_kernels(ffn_type):
    for activation in ("swish", "relu", "tanh"):
        stock, dynamic = _pair(dict(macaron_style=False, positionwise_layer_type=ffn_type, activation_type=activation))
        ffn, ref = dynamic.encoders[0].feed_forward, stock.encoders[0].feed_forward
        h = torch.randn(2, 17, 32)
        with torch.no_grad():
            torch.testing.assert_close(ffn(h), ref(h), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="positionwise_conv_kernel_size must be odd"):
        DynamicConformerEncoder(20, **BASE, positionwise_layer_type=ffn_type, positionwise_conv_kernel_size=4)
