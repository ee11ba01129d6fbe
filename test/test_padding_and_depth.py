"""Padding invariance, stochastic depth and InterCTC outputs of dynamic_conformer."""
import pytest
import torch

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.parts.stochastic_depth import depth_schedule

CONF = dict(output_size=32, attention_heads=4, linear_units=48, num_blocks=2, cnn_module_kernel=7,
            macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0)


def _encoder(**overrides):
    torch.manual_seed(0)
    return DynamicConformerEncoder(20, **{**CONF, **overrides})


@pytest.mark.parametrize("ffn_type", ["linear", "conv1d", "conv1d-linear"])
@pytest.mark.parametrize("input_layer", ["conv2d", "linear"])
def test_batched_forward_equals_each_unbatched_forward(input_layer, ffn_type):
    # The convolutional FFNs (kernel 5 here) see neighbouring frames: padding must not reach them.
    enc = _encoder(input_layer=input_layer, positionwise_layer_type=ffn_type, positionwise_conv_kernel_size=5).eval()
    lengths = [61, 40, 23]
    utts = [torch.randn(1, n, 20) for n in lengths]
    batch = torch.zeros(3, max(lengths), 20) + 7.0  # padding with junk must not matter
    for i, u in enumerate(utts):
        batch[i, : lengths[i]] = u[0]
    with torch.no_grad():
        out, out_lens, _ = enc(batch, torch.tensor(lengths))
        for i, u in enumerate(utts):
            single, single_lens, _ = enc(u, torch.tensor([lengths[i]]))
            n = int(single_lens[0])
            assert int(out_lens[i]) == n
            torch.testing.assert_close(out[i, :n], single[0], atol=1e-5, rtol=0)


def test_linear_depth_schedule():
    assert depth_schedule(0.3, 3, "linear") == pytest.approx([0.1, 0.2, 0.3])
    assert depth_schedule(0.2, 4, "constant") == [0.2] * 4
    assert depth_schedule([0.0, 0.5], 2) == [0.0, 0.5]
    with pytest.raises(ValueError, match="stochastic_depth_rate has 3 entries"):
        depth_schedule([0.1, 0.1, 0.1], 2)
    with pytest.raises(ValueError, match="stochastic_depth_schedule"):
        depth_schedule(0.1, 2, "cubic")
    enc = _encoder(stochastic_depth_rate=0.4, stochastic_depth_schedule="linear")
    assert enc.block_drop_rates == pytest.approx([0.2, 0.4])


def test_batch_stochastic_depth_skips_whole_block_or_rescales():
    enc = _encoder(num_blocks=1, stochastic_depth_rate=0.5).train()
    x, lengths = torch.randn(2, 40, 20), torch.tensor([40, 40])
    embedded = enc.forward_frontend(x, lengths)
    outputs = set()
    torch.manual_seed(3)
    for _ in range(20):
        out, _, _ = enc.forward_blocks(embedded)
        skipped = torch.allclose(out, enc.after_norm(embedded.xs))
        outputs.add(skipped)
    assert outputs == {True, False}  # both outcomes occur


def test_utterance_stochastic_depth_drops_rows_independently():
    enc = _encoder(num_blocks=1, stochastic_depth_rate=0.5, stochastic_depth_mode="utterance").train()
    x = torch.randn(1, 40, 20).repeat(16, 1, 1)
    embedded = enc.forward_frontend(x, torch.full((16,), 40))
    torch.manual_seed(1)
    out, _, _ = enc.forward_blocks(embedded)
    identity = enc.after_norm(embedded.xs)
    dropped = [torch.allclose(out[i], identity[i]) for i in range(16)]
    assert 0 < sum(dropped) < 16
    kept = [i for i in range(16) if not dropped[i]]
    torch.testing.assert_close(out[kept[0]], out[kept[-1]])  # same input, kept rows agree


def test_row_wise_unit_drop_rescales_kept_rows():
    enc = _encoder(num_blocks=1).train()
    x = torch.randn(1, 40, 20).repeat(32, 1, 1)
    embedded = enc.forward_frontend(x, torch.full((32,), 40))
    rates = [0.0, 0.5, 0.0, 0.0]
    torch.manual_seed(0)
    out, _, _ = enc.forward_blocks(embedded, unit_drop_rates=rates)
    rows = {tuple(out[i, 0, :4].tolist()) for i in range(32)}
    assert len(rows) == 2  # self-attention dropped for some utterances, kept for others
    enc.eval()
    ref, _, _ = enc.forward_blocks(embedded, unit_drop_rates=rates)  # no effect at test time
    ref_all, _, _ = enc.forward_blocks(embedded)
    torch.testing.assert_close(ref, ref_all)


def test_interctc_outputs_at_configured_blocks_through_final_norm():
    enc = _encoder(num_blocks=3, interctc_layer_idx=[1, 2]).eval()
    x, lengths = torch.randn(2, 40, 20), torch.tensor([40, 31])
    (out, inter), _, _ = enc(x, lengths)
    assert [layer for layer, _ in inter] == [1, 2]
    hs = enc(x, lengths, return_all_hs=True)[0][1]
    torch.testing.assert_close(inter[0][1], enc.after_norm(hs[0]))
