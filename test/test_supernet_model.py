"""supernet_ctc: per-size heads and stats, subnet selection, sizes and bad configurations."""
import pytest
import torch
from espnet2.asr.ctc import CTC

from espnet_dynenc.analysis.complexity import encode_flops, subnet_complexity
from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel, SubnetPass

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=32, attention_heads=4, linear_units=48, num_blocks=2, cnn_module_kernel=7,
           macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0,
           input_layer="conv2d")
SMALL_MASK = "1010 0010"


def build(encoder_conf=None, **model_conf):
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, **{**ENC, **(encoder_conf or {})})
    ctc = CTC(len(TOKENS), encoder.output_size())
    conf = {"subnet_sizes": [3, 8], "subnet_masks": [SMALL_MASK, "1111 1111"], **model_conf}
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None,
        preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=ctc, joint_network=None, **conf,
    )


def batch():
    torch.manual_seed(1)
    speech = torch.randn(3, 60, 20)
    lengths = torch.tensor([60, 52, 41])
    text = torch.tensor([[2, 3, 4], [3, 3, -1], [4, -1, -1]])
    return speech, lengths, text, torch.tensor([3, 2, 1])


def test_one_head_per_size_with_espnet_names():
    model = build()
    assert model.subnet_sizes == [3, 8]
    assert model.ctc_for(3) is not model.ctc_for(8)
    keys = set(model.state_dict())
    assert {"ctc.ctc_lo.weight", "subnet_ctcs.3.ctc_lo.weight", "subnet_masks"} <= keys
    shared = build(share_ctc_head=True)
    assert shared.ctc_for(3) is shared.ctc_for(8)
    assert not any(k.startswith("subnet_ctcs") for k in shared.state_dict())


def test_training_loss_is_weighted_sum_of_subnet_losses_and_stats_per_size():
    model = build(subnet_loss_weight=0.3).train()
    speech, lengths, text, text_lengths = batch()
    loss, stats, weight = model(speech, lengths, text.clone(), text_lengths)
    assert {"loss", "loss_ctc", "loss_ctc_3", "loss_ctc_8"} <= set(stats)
    embedded = model.embed(speech, lengths)
    expected = 0.0
    for size, w in ((8, 1.0), (3, 0.3)):
        out, _, olens = model.encode_subnet(embedded, SubnetPass(size, model.mask_for(size), w))
        target = text.clone()
        target[target == -1] = model.ignore_id
        expected = expected + w * model.ctc_for(size)(out, olens, target, text_lengths)
    torch.testing.assert_close(loss.reshape(()), expected)
    torch.testing.assert_close(stats["loss_ctc"], stats["loss_ctc_8"])
    assert int(weight) == 3


def test_validation_reports_cer_per_size():
    model = build().eval()
    with torch.no_grad():
        _, stats, _ = model(*batch())
    assert stats["cer_ctc_3"] is not None and stats["cer_ctc_8"] is not None
    torch.testing.assert_close(stats["cer_ctc"], stats["cer_ctc_8"])


def test_gradients_reach_each_head_and_shared_encoder():
    model = build().train()
    loss, _, _ = model(*batch())
    loss.backward()
    assert model.ctc_for(3).ctc_lo.weight.grad is not None
    assert model.ctc_for(8).ctc_lo.weight.grad is not None
    # Unit 1 (block 0 self-attention) is only in the supernet; unit 0 in both.
    assert model.encoder.encoders[0].self_attn.linear_q.weight.grad is not None


def test_select_subnet_switches_encoder_and_ctc():
    model = build().eval()
    speech, lengths, _, _ = batch()
    model.select_subnet(3)
    assert model.ctc is model.ctc_for(3)
    with torch.no_grad():
        out, _ = model.encode(speech, lengths)
        ref, _, _ = model.encoder(speech, lengths, subnet=model.mask_for(3))
    torch.testing.assert_close(out, ref)
    model.select_subnet(None)
    assert model.ctc is model.ctc_for(8)
    with pytest.raises(ValueError, match="subnet 5 is not one of this model's sizes"):
        model.select_subnet(5)


def test_parameter_count_and_flops_are_measured_on_the_modules():
    model = build()
    small = model.subnet_parameter_count(3)
    full = model.subnet_parameter_count(8)
    assert small < full
    assert full == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("subnet_ctcs"))
    # The same subnet built physically (width-0 modules) has the same FLOPs and parameters.
    widths = [{"self_attn": 0, "feed_forward": 0}, {"feed_forward_macaron": 0, "self_attn": 0, "feed_forward": 0}]
    physical = build(encoder_conf={"block_widths": widths}, subnet_sizes=[8], subnet_masks=None)
    assert encode_flops(model, 3, 2.0, 16000) == encode_flops(physical, 8, 2.0, 16000)
    assert small == physical.subnet_parameter_count(8) == sum(p.numel() for p in physical.parameters())
    c3, c8 = subnet_complexity(model, 3, 2.0), subnet_complexity(model, 8, 2.0)
    assert 0 < c3.flops_per_second < c8.flops_per_second


@pytest.mark.parametrize("conf, message", [
    ({"subnet_sizes": [3, 9], "subnet_masks": None}, "9 is not in 1..8"),
    ({"subnet_sizes": [8, 3], "subnet_masks": None}, "strictly increasing"),
    ({"subnet_sizes": [3, 6], "subnet_masks": None}, "largest size must be the whole encoder"),
    ({"subnet_masks": ["1010 001", "1111 1111"]}, "mask has 7 entries, the encoder has 8 units"),
    ({"subnet_masks": ["1010 0010"]}, "1 masks for 2 subnet_sizes"),
    ({"subnet_masks": ["1011 0010", "1111 1111"]}, "keeps 4 units"),
    ({"subnet_sizes": [3, 5, 8], "subnet_masks": ["1010 0010", "0101 0111", "1111 1111"]}, "not nested"),
    ({"subnet_masks": ["10x0 0010", "1111 1111"]}, "must contain only 0, 1"),
    ({"ctc_weight": 0.5}, "CTC-only"),
])
def test_bad_subnet_configuration_names_the_option(conf, message):
    with pytest.raises(ValueError, match=message):
        build(**conf)


@pytest.mark.parametrize("conf, message", [
    ({"unit_order": ["ffn", "mhsa", "lstm", "ffn"]}, "unit_order: unknown module 'lstm'"),
    ({"unit_order": ["mhsa", "conv", "ffn"]}, "macaron_style=True"),
    ({"block_widths": [{"feed_forwrd": 10}, None]}, "unknown module 'feed_forwrd'"),
    ({"block_widths": [None]}, "block_widths has 1 entries"),
    ({"attention_heads": 5}, "attention_heads=5 does not divide output_size=32"),
    ({"interctc_layer_idx": [2]}, "interctc_layer_idx: 2"),
    ({"input_layer": "conv3d"}, "input_layer: unknown value 'conv3d'"),
    ({"positionwise_layer_type": "conv2d"}, "positionwise_layer_type='conv2d' is not supported"),
    ({"positionwise_layer_type": "conv1d", "positionwise_conv_kernel_size": 4},
     "positionwise_conv_kernel_size must be odd"),
    ({"stochastic_depth_mode": "token"}, "stochastic_depth_mode"),
    ({"cnn_module_kernel": 6}, "cnn_module_kernel must be odd"),
])
def test_bad_encoder_configuration_names_the_option(conf, message):
    with pytest.raises(ValueError, match=message):
        DynamicConformerEncoder(20, **{**ENC, **conf})


def test_bad_forward_arguments():
    enc = DynamicConformerEncoder(20, **ENC)
    x, lengths = torch.randn(1, 30, 20), torch.tensor([30])
    with pytest.raises(ValueError, match="subnet mask has 5 entries, but the encoder has 8 units"):
        enc(x, lengths, subnet=[1] * 5)
    with pytest.raises(ValueError, match="skip_blocks: 2 is not a block index"):
        enc(x, lengths, skip_blocks=[2])
    with pytest.raises(ValueError, match="unit_gates must have shape"):
        enc(x, lengths, unit_gates=torch.ones(3))


def test_conv_feed_forward_flops_and_parameters_count_the_kernel():
    """FFN complexity is measured on the modules: a kernel-1 conv FFN costs what a linear one does,
    a kernel-k one k times as much in its matrices; a pruned conv FFN costs nothing."""
    def complexity(**conf):
        model = build(encoder_conf=conf)
        return model, [subnet_complexity(model, size, 2.0) for size in (3, 8)]

    _, linear = complexity()
    for ffn_type in ("conv1d", "conv1d-linear"):
        _, kernel1 = complexity(positionwise_layer_type=ffn_type, positionwise_conv_kernel_size=1)
        assert kernel1 == linear, ffn_type
        model, kernel3 = complexity(positionwise_layer_type=ffn_type, positionwise_conv_kernel_size=3)
        frames = int(model.encoder.subsampled_lengths(torch.tensor([200]))[0])  # 2 s of 10 ms frames
        d, h = ENC["output_size"], ENC["linear_units"]
        taps = 2 if ffn_type == "conv1d" else 1  # matrices with 3 taps instead of 1: w_1 (and w_2)
        per_ffn = taps * 2 * frames * d * h * (3 - 1)
        # size 3 keeps 1 of the 4 FFNs (block 0's macaron), size 8 all 4
        for ffns, slow, fast in zip((1, 4), kernel3, linear):
            assert slow.flops_per_second * 2.0 - fast.flops_per_second * 2.0 == pytest.approx(ffns * per_ffn)
            assert slow.parameters - fast.parameters == ffns * taps * d * h * (3 - 1)
