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


def test_stock_state_dict_loads_and_only_new_parameters_are_missing():
    stock = ConformerEncoder(20, **BASE, macaron_style=True, rel_pos_type="latest")
    dynamic = DynamicConformerEncoder(20, **BASE, macaron_style=True, rel_pos_type="latest")
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
