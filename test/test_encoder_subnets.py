"""Pruned units are not computed, get no gradient, and equal physically removed modules."""
from collections import Counter

import pytest
import torch

from espnet_dynenc.encoder import DynamicConformerEncoder

CONF = dict(output_size=32, attention_heads=4, linear_units=48, num_blocks=3, cnn_module_kernel=7,
            macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0)
MASK = [1, 0, 1, 1,  0, 0, 0, 0,  1, 1, 0, 1]  # block 1 keeps nothing
# positionwise_layer_type: ESPnet's three feed-forward modules, the convolutional ones with kernel 3
FFN_TYPES = {"linear": {}, "conv1d": dict(positionwise_layer_type="conv1d", positionwise_conv_kernel_size=3),
             "conv1d-linear": dict(positionwise_layer_type="conv1d-linear", positionwise_conv_kernel_size=3)}


def _encoder(**overrides):
    torch.manual_seed(0)
    return DynamicConformerEncoder(20, **{**CONF, **overrides})


def _count_calls(encoder):
    calls = Counter()
    for b, block in enumerate(encoder.encoders):
        for spec in block.units:
            module = getattr(block, spec.module_name)
            if module is not None:
                module.register_forward_hook(lambda *_, key=(b, spec.module_name): calls.update([key]))
    return calls


@pytest.mark.parametrize("ffn_type", sorted(FFN_TYPES))
def test_pruned_units_never_run(ffn_type):
    enc = _encoder(**FFN_TYPES[ffn_type]).eval()
    calls = _count_calls(enc)
    enc(torch.randn(2, 50, 20), torch.tensor([50, 41]), subnet=MASK)
    expected = {(u // 4, enc.unit_specs[u % 4].module_name) for u, keep in enumerate(MASK) if keep}
    assert set(calls) == expected
    assert all(n == 1 for n in calls.values())


@pytest.mark.parametrize("ffn_type", sorted(FFN_TYPES))
def test_gradients_reach_kept_units_only(ffn_type):
    enc = _encoder(**FFN_TYPES[ffn_type]).train()
    out, _, _ = enc(torch.randn(2, 50, 20), torch.tensor([50, 41]), subnet=MASK)
    out.sum().backward()
    for u, keep in enumerate(MASK):
        block, position = divmod(u, 4)
        grads = [p.grad for m in enc.encoders[block].unit_modules(position) for p in m.parameters()]
        if keep:
            assert all(g is not None and g.abs().sum() > 0 for g in grads), enc.unit_name(u)
        else:
            assert all(g is None for g in grads), enc.unit_name(u)
    # The block-final norm runs even in block 1, where every unit is pruned.
    assert enc.encoders[1].norm_final.weight.grad is not None


@pytest.mark.parametrize("ffn_type", sorted(FFN_TYPES))
def test_pruned_unit_equals_removed_module_and_counts_match(ffn_type):
    """A mask on a full encoder == an encoder built with those modules at width 0."""
    full = _encoder(**FFN_TYPES[ffn_type]).eval()
    widths = []
    for b in range(3):
        row = {}
        for position, spec in enumerate(full.unit_specs):
            if not MASK[4 * b + position]:
                row[spec.module_name] = 0
        widths.append(row)
    small = _encoder(block_widths=widths, **FFN_TYPES[ffn_type]).eval()
    result = small.load_state_dict(full.state_dict(), strict=False)
    assert result.missing_keys == []
    x, lengths = torch.randn(2, 50, 20), torch.tensor([50, 37])
    with torch.no_grad():
        torch.testing.assert_close(small(x, lengths)[0], full(x, lengths, subnet=MASK)[0], atol=1e-6, rtol=0)
    assert full.subnet_parameter_count(MASK) == sum(p.numel() for p in small.parameters())


def test_width_zero_module_is_identity():
    enc = _encoder(num_blocks=1, block_widths=[{"feed_forward_macaron": 0, "self_attn": 0, "conv_module": 0,
                                                "feed_forward": 0}]).eval()
    x = torch.randn(2, 30, 20)
    with torch.no_grad():
        embedded = enc.forward_frontend(x, torch.tensor([30, 30]))
        out, _, _ = enc.forward_blocks(embedded)
        expected = enc.after_norm(enc.encoders[0].norm_final(embedded.xs))
    torch.testing.assert_close(out, expected)


def test_per_block_widths_shape_the_parameters():
    enc = _encoder(block_widths=[{"feed_forward": 16, "self_attn": 2, "conv_module": 8}, None,
                                 {"feed_forward_macaron": 96}])
    assert enc.encoders[0].feed_forward.w_1.weight.shape == (16, 32)
    assert enc.encoders[0].self_attn.linear_q.weight.shape == (16, 32)  # 2 heads x 8
    assert enc.encoders[0].self_attn.pos_bias_u.shape == (2, 8)
    assert enc.encoders[0].conv_module.pointwise_conv1.weight.shape == (16, 32, 1)  # value + gate
    assert enc.encoders[0].conv_module.pointwise_conv2.weight.shape == (32, 8, 1)
    assert enc.encoders[1].feed_forward.w_1.weight.shape == (48, 32)
    assert enc.encoders[2].feed_forward_macaron.w_2.weight.shape == (32, 96)
    out, _, _ = enc(torch.randn(2, 40, 20), torch.tensor([40, 29]))
    assert out.shape == (2, 9, 32)


def test_skip_blocks_equals_model_without_those_blocks():
    full = _encoder().eval()
    short = _encoder(num_blocks=2).eval()
    state = {k: v for k, v in full.state_dict().items() if not k.startswith("encoders.1.")}
    state = {k.replace("encoders.2.", "encoders.1."): v for k, v in state.items()}
    short.load_state_dict(state, strict=True)
    x, lengths = torch.randn(2, 50, 20), torch.tensor([50, 44])
    with torch.no_grad():
        torch.testing.assert_close(full(x, lengths, skip_blocks=[1])[0], short(x, lengths)[0])


def test_unit_gates_scale_outputs_and_zero_gates_equal_pruning():
    enc = _encoder().eval()
    x, lengths = torch.randn(2, 50, 20), torch.tensor([50, 44])
    gates = torch.tensor(MASK, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(enc(x, lengths, unit_gates=gates)[0], enc(x, lengths, subnet=MASK)[0],
                                   atol=1e-6, rtol=0)
    gates = torch.rand(12, requires_grad=True)
    enc.train()
    enc(x, lengths, unit_gates=gates)[0].sum().backward()
    assert gates.grad is not None and bool((gates.grad != 0).all())


@pytest.mark.parametrize("ffn_type", ["conv1d", "conv1d-linear"])
def test_per_block_widths_shape_conv_feed_forwards(ffn_type):
    enc = _encoder(block_widths=[{"feed_forward": 16}, {"feed_forward_macaron": 0}, None], **FFN_TYPES[ffn_type])
    assert enc.encoders[0].feed_forward.w_1.weight.shape == (16, 32, 3)
    w_2 = (32, 16) if ffn_type == "conv1d-linear" else (32, 16, 3)
    assert enc.encoders[0].feed_forward.w_2.weight.shape == w_2
    assert enc.encoders[1].feed_forward_macaron is None and enc.encoders[1].norm_ff_macaron is None
    assert enc.encoders[2].feed_forward_macaron.w_1.weight.shape == (48, 32, 3)
    out, _, _ = enc(torch.randn(2, 40, 20), torch.tensor([40, 29]))
    assert out.shape == (2, 9, 32)
