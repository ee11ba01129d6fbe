"""DMAO's group operations: regrouping keeps functions exact, events keep the budget."""
import json

import pytest
import torch

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.parts.feed_forward import ConvFeedForward
from espnet_dynenc.reallocation import (
    ImportanceTracker,
    apply_architecture,
    DropoutReference,
    dropout_reference_from,
    gather_state,
    group_index_slices,
    group_parameter_cost,
    group_scores,
    identity_index_lists,
    num_groups,
    plan_reallocation,
    reallocate,
    rebuild_block,
    regroup,
    rescale_dropout,
)
from espnet_dynenc.reallocation.kinds import KINDS, default_group_size, designated_tensors, group_layout, unit_kind

CONF = dict(output_size=16, attention_heads=4, linear_units=64, num_blocks=2, cnn_module_kernel=3,
            macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0)
MODULES = ("feed_forward_macaron", "self_attn", "conv_module", "feed_forward")
OUTPUT_PROJECTIONS = ("w_2.weight", "linear_out.weight", "pointwise_conv2.weight")
# d = 16: an FFN group is 16 hidden units, a conv group 4 channels, an MHSA group one head of 4.
COST = {"feed_forward_macaron": 16 * 16 + 16 + 16 * 16, "feed_forward": 16 * 16 + 16 + 16 * 16,
        "self_attn": 3 * (4 * 16 + 4) + 4 * 16 + 2 * 4 + 4 * 16,
        "conv_module": 2 * (4 * 16 + 4) + (4 * 3 + 4) + 2 * 4 + 4 * 16}


# positionwise_layer_type: the convolutional FFNs (kernel 3) are grouped like the linear one, by hidden
# channel: a conv1d group holds 16 x 16 x 3 weights + 16 biases of w_1 and 16 x 16 x 3 of w_2.
FFN_CONF = {"linear": {}, "conv1d": dict(positionwise_layer_type="conv1d", positionwise_conv_kernel_size=3),
            "conv1d-linear": dict(positionwise_layer_type="conv1d-linear", positionwise_conv_kernel_size=3)}
FFN_COST = {"linear": COST["feed_forward"], "conv1d": 16 * 16 * 3 + 16 + 16 * 16 * 3,
            "conv1d-linear": 16 * 16 * 3 + 16 + 16 * 16}
FFN_NAMES = ("feed_forward_macaron", "feed_forward")
MODULE_CASES = [(name, "linear") for name in MODULES] + [
    (name, ffn_type) for ffn_type in ("conv1d", "conv1d-linear") for name in FFN_NAMES]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: extra intra-op threads only add contention on a busy host."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _encoder(**overrides):
    torch.manual_seed(0)
    enc = DynamicConformerEncoder(20, **{**CONF, **overrides})
    # Randomise biases, norms and running statistics, so exactness is no accident of init.
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return enc.eval()


def _inputs():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 29])


def _encode(enc):
    x, lengths = _inputs()
    with torch.no_grad():
        return enc(x, lengths)[0]


def _run_module(name, module, enc):
    """Apply one module to the frontend output, with padding, as the block would."""
    x, lengths = _inputs()
    with torch.no_grad():
        emb = enc.forward_frontend(x, lengths)
        if name == "self_attn":
            return module(emb.xs, emb.masks, emb.pos_emb)
        return module(emb.xs, ~emb.masks[:, 0, :])  # conv module, FFN (a conv FFN masks padding)


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------- groups
@pytest.mark.parametrize("ffn_type", sorted(FFN_CONF))
def test_group_counts_and_costs(ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    block = enc.encoders[0]
    for name in MODULES:
        module = getattr(block, name)
        assert num_groups(module) == 4
        assert group_parameter_cost(module) == (FFN_COST[ffn_type] if name in FFN_NAMES else COST[name])
    assert num_groups(None) == 0
    assert num_groups(block.feed_forward, 32) == 2
    ffn = group_index_slices(block.feed_forward, 3)
    assert ffn == {"w_1.weight": (0, [slice(48, 64)]), "w_1.bias": (0, [slice(48, 64)]),
                   "w_2.weight": (1, [slice(48, 64)])}


def test_group_slices_are_contiguous_and_cover_every_grouped_tensor():
    enc = _encoder()
    attn = enc.encoders[0].self_attn
    slices = group_index_slices(attn, 2)
    assert slices["linear_q.weight"] == (0, [slice(8, 12)])
    assert slices["linear_pos.weight"] == (0, [slice(8, 12)])
    assert slices["pos_bias_u"] == (0, [slice(2, 3)])
    assert slices["linear_out.weight"] == (1, [slice(8, 12)])
    conv = group_index_slices(enc.encoders[0].conv_module, 1)
    assert conv["pointwise_conv1.weight"] == (0, [slice(4, 8), slice(20, 24)])  # value and gate rows
    assert conv["norm.running_var"] == (0, [slice(4, 8)])
    assert conv["pointwise_conv2.weight"] == (1, [slice(4, 8)])
    ffn = group_index_slices(enc.encoders[0].feed_forward, 3)
    assert ffn == {"w_1.weight": (0, [slice(48, 64)]), "w_1.bias": (0, [slice(48, 64)]),
                   "w_2.weight": (1, [slice(48, 64)])}


@pytest.mark.parametrize("name, ffn_type", MODULE_CASES)
def test_identity_regroup_is_exact(name, ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    module = getattr(enc.encoders[1], name)
    new = regroup(module, [0, 1, 2, 3])
    assert new is not module and not new.training
    for key, value in module.state_dict().items():
        assert torch.equal(new.state_dict()[key], value), key
        assert new.state_dict()[key].data_ptr() != value.data_ptr()  # fresh storage
    torch.testing.assert_close(_run_module(name, new, enc), _run_module(name, module, enc), atol=0, rtol=0)


@pytest.mark.parametrize("name, ffn_type", MODULE_CASES)
def test_permuted_groups_compute_the_same(name, ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    module = getattr(enc.encoders[0], name)
    _close(_run_module(name, regroup(module, [2, 0, 3, 1]), enc), _run_module(name, module, enc))


@pytest.mark.parametrize("name, ffn_type", MODULE_CASES)
def test_duplicated_group_with_split_output_computes_the_same(name, ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    module = getattr(enc.encoders[0], name)
    new = regroup(module, [0, 1, 2, 3, 1, 1], split_output=True)
    assert num_groups(new) == 6
    _close(_run_module(name, new, enc), _run_module(name, module, enc))
    # The copies' input side is an exact copy; their output columns are a third each.
    old_slices, new_state = group_index_slices(module, 1), new.state_dict()
    for copy_index in (1, 4, 5):
        for tensor, (dim, spans) in group_index_slices(new, copy_index).items():
            for new_span, old_span in zip(spans, old_slices[tensor][1]):
                got = new_state[tensor].narrow(dim, new_span.start, new_span.stop - new_span.start)
                src = module.state_dict()[tensor].narrow(dim, old_span.start, old_span.stop - old_span.start)
                expected = src / 3 if tensor.endswith(OUTPUT_PROJECTIONS) else src
                _close(got, expected)
    # Without the split the copies add their contribution again.
    plain = regroup(module, [0, 1, 2, 3, 1, 1])
    assert not torch.allclose(_run_module(name, plain, enc), _run_module(name, module, enc), atol=1e-4)


@pytest.mark.parametrize("name, ffn_type", MODULE_CASES)
def test_dropping_a_group_equals_zeroing_its_output_columns(name, ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    module = getattr(enc.encoders[0], name)
    expected_module = regroup(module, [0, 1, 2, 3])
    for tensor, (dim, spans) in group_index_slices(expected_module, 1).items():
        if tensor.endswith(OUTPUT_PROJECTIONS):
            columns = spans[0].stop - spans[0].start
            with torch.no_grad():
                getattr_path(expected_module, tensor).narrow(dim, spans[0].start, columns).zero_()
    _close(_run_module(name, regroup(module, [0, 2, 3]), enc), _run_module(name, expected_module, enc))


def getattr_path(module, dotted):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def test_empty_index_list_returns_none_and_bad_lists_raise():
    enc = _encoder()
    ffn = enc.encoders[0].feed_forward
    assert regroup(ffn, []) is None
    with pytest.raises(ValueError, match="index_list: group index 4 is out of range"):
        regroup(ffn, [0, 4])
    with pytest.raises(ValueError, match="index_list: group index -1"):
        regroup(ffn, [-1])
    with pytest.raises(ValueError, match="group_size=24"):
        regroup(ffn, [0], group_size=24)
    with pytest.raises(ValueError, match="noise_std"):
        regroup(ffn, [0, 0], noise_std=-1.0)


def test_copy_noise_perturbs_only_the_copies_and_is_seeded():
    enc = _encoder()
    ffn = enc.encoders[0].feed_forward
    a = regroup(ffn, [0, 1, 2, 3, 1], noise_std=0.01, generator=torch.Generator().manual_seed(3))
    b = regroup(ffn, [0, 1, 2, 3, 1], noise_std=0.01, generator=torch.Generator().manual_seed(3))
    for key in a.state_dict():
        assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    torch.testing.assert_close(a.w_1.weight[:64], ffn.w_1.weight, atol=0, rtol=0)  # originals exact
    diff = (a.w_1.weight[64:] - ffn.w_1.weight[16:32]).abs()
    assert 0 < diff.max() < 0.1


def test_gather_state_maps_optimizer_moments_like_parameters():
    enc = _encoder()
    conv = enc.encoders[0].conv_module
    moments = {name: torch.randn_like(p) for name, p in conv.named_parameters()}
    gathered = gather_state(conv, moments, [3, 3, 0])
    new = regroup(conv, [3, 3, 0])
    assert gathered.keys() == moments.keys()
    for name, p in new.named_parameters():
        assert gathered[name].shape == p.shape
    torch.testing.assert_close(gathered["pointwise_conv1.weight"][4:8], moments["pointwise_conv1.weight"][12:16])
    torch.testing.assert_close(gathered["pointwise_conv1.weight"][12:16], moments["pointwise_conv1.weight"][28:32])
    with pytest.raises(ValueError, match="state: 'w_1.weight'"):
        gather_state(conv, {"w_1.weight": torch.zeros(1)}, [0])


def test_the_kinds_table_covers_every_unit_of_a_block():
    """Each unit of a block finds its kind, whose score is measured on tensors the kind groups."""
    enc = _encoder()
    for spec in enc.encoders[0].units:
        module = getattr(enc.encoders[0], spec.module_name)
        kind = unit_kind(module)
        assert kind is KINDS[spec.kind]
        scored = {entry.name for entry in designated_tensors(module)}
        assert scored and scored <= set(kind.designated) & {entry.name for entry in group_layout(module)}
    assert [default_group_size(kind, 16) for kind in KINDS] == [16, 1, 4]
    with pytest.raises(ValueError, match="Linear has no DMAO groups .expected FeedForward, ConvFeedForward, "
                                         "MultiHeadSelfAttention or ConvolutionModule"):
        unit_kind(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="kind: unknown module kind 'heads'"):
        default_group_size("heads", 16)
    with pytest.raises(ValueError, match="d_model=2: the default conv group size"):
        default_group_size("conv", 2)


# ---------------------------------------------------------------------- blocks and encoder
def test_identity_architecture_leaves_the_encoder_unchanged():
    enc = _encoder()
    before, state = _encode(enc), {k: v.clone() for k, v in enc.state_dict().items()}
    changes = apply_architecture(enc, identity_index_lists(enc))
    assert len(changes) == 8
    assert enc.block_widths == [{"feed_forward_macaron": 64, "self_attn": 4, "conv_module": 16, "feed_forward": 64}] * 2
    assert enc.state_dict().keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(enc.state_dict()[key], value), key
    torch.testing.assert_close(_encode(enc), before, atol=0, rtol=0)


def test_duplicates_across_the_encoder_with_split_output_compute_the_same():
    enc = _encoder()
    before = _encode(enc)
    lists = [{"feed_forward_macaron": [0, 1, 2, 3, 0], "self_attn": [3, 2, 1, 0, 2, 2], "conv_module": [0, 1, 2, 3, 3]},
             {"feed_forward": [1, 1, 0, 2, 3], "conv_module": [1, 0, 2, 3, 0, 0]}]
    apply_architecture(enc, lists, split_output=True)
    assert enc.block_widths[0] == {"feed_forward_macaron": 80, "self_attn": 6, "conv_module": 20, "feed_forward": 64}
    assert enc.encoders[1].conv_module.norm.running_mean.shape == (24,)
    _close(_encode(enc), before)


def test_emptied_module_is_an_identity_unit():
    enc = _encoder()
    apply_architecture(enc, [{"conv_module": [], "self_attn": [1, 3]}, {"feed_forward": []}])
    assert enc.encoders[0].conv_module is None and enc.encoders[0].norm_conv is None
    assert enc.encoders[1].feed_forward is None and enc.encoders[1].norm_ff is None
    assert enc.encoders[0].norm_mha is not None
    widths = [{"conv_module": 0, "self_attn": 2}, {"feed_forward": 0}]
    assert [{k: row[k] for k in w} for row, w in zip(enc.block_widths, widths)] == widths
    # The same architecture built directly, with the same remaining weights.
    direct = DynamicConformerEncoder(20, **CONF, block_widths=widths).eval()
    direct.load_state_dict(enc.state_dict(), strict=True)
    torch.testing.assert_close(_encode(enc), _encode(direct), atol=0, rtol=0)


def test_bad_architectures_raise_and_change_nothing():
    enc = _encoder(block_widths=[{"conv_module": 0}, None])
    state = {k: v.clone() for k, v in enc.state_dict().items()}
    with pytest.raises(ValueError, match="cannot be grown from nothing"):
        apply_architecture(enc, [{"conv_module": [0]}, {"feed_forward": [0]}])
    with pytest.raises(ValueError, match="block 1: 'self_attn': index_list: group index 7 is out of range"):
        apply_architecture(enc, [{"feed_forward": []}, {"self_attn": [7]}])
    with pytest.raises(ValueError, match="unknown module 'attn'"):
        apply_architecture(enc, [{"attn": [0]}, None])
    with pytest.raises(ValueError, match="index_lists has 1 entries"):
        apply_architecture(enc, [{}])
    # Nothing was installed by the failed calls, not even the valid block-0 entries.
    assert enc.encoders[0].feed_forward is not None
    assert enc.block_widths[0]["feed_forward"] == 64
    assert enc.state_dict().keys() == state.keys()
    block = enc.encoders[1]
    with pytest.raises(ValueError, match="new_widths"):
        rebuild_block(block, {"feed_forward": 48}, {"feed_forward": [0, 1]})
    with pytest.raises(ValueError, match="cannot be grown"):
        rebuild_block(enc.encoders[0], {"conv_module": 4}, {"conv_module": []})
    changes = rebuild_block(block, {"feed_forward": 32}, {"feed_forward": [0, 1]})
    assert block.feed_forward.w_1.out_features == 32 and changes[0].old_width == 64


# ---------------------------------------------------------------------- importance
def _backward(enc):
    enc.train()
    x, lengths = _inputs()
    enc.zero_grad()
    enc(x, lengths)[0].pow(2).mean().backward()
    enc.eval()


@pytest.mark.parametrize("ffn_type", sorted(FFN_CONF))
def test_zero_groups_score_zero_under_taylor_and_weight(ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    block = enc.encoders[0]
    with torch.no_grad():
        block.feed_forward.w_1.weight[16:32].zero_()
        block.feed_forward.w_1.bias[16:32].zero_()
        block.conv_module.pointwise_conv1.weight[8:12].zero_()   # values of group 2
        block.conv_module.pointwise_conv1.weight[24:28].zero_()  # gates of group 2
        block.conv_module.pointwise_conv1.bias[8:12].zero_()
        block.conv_module.pointwise_conv1.bias[24:28].zero_()
        block.self_attn.linear_out.weight[:, 12:16].zero_()
    _backward(enc)
    for module, zero in ((block.feed_forward, 1), (block.conv_module, 2), (block.self_attn, 3)):
        for method in ("taylor", "weight"):
            scores = group_scores(module, method)
            assert scores.shape == (4,)
            assert scores[zero] == 0
            assert bool((torch.cat([scores[:zero], scores[zero + 1:]]) > 0).all())
        gradient = group_scores(module, "gradient")
        if isinstance(module, ConvFeedForward):
            # ReLU (the conv FFNs' activation, as ESPnet's) has no gradient at 0: a zeroed group gets none
            assert gradient[zero] == 0
            gradient = torch.cat([gradient[:zero], gradient[zero + 1:]])
        assert bool((gradient > 0).all())


def test_taylor_score_matches_its_definition():
    enc = _encoder()
    _backward(enc)
    conv = enc.encoders[1].conv_module
    w, b = conv.pointwise_conv1.weight, conv.pointwise_conv1.bias
    rows = list(range(4, 8)) + list(range(20, 24))
    expected = ((w.grad * w)[rows].abs().sum() + (b.grad * b)[rows].abs().sum()) / (8 * 16 + 8)
    torch.testing.assert_close(group_scores(conv, "taylor")[1], expected.detach())
    attn = enc.encoders[1].self_attn
    w = attn.linear_out.weight
    torch.testing.assert_close(group_scores(attn, "gradient")[0], w.grad[:, 0:4].abs().sum() / 64)
    assert group_scores(regroup(attn, [0, 1]), "taylor") is None  # a fresh module has no gradient


def test_tracker_ema_reset_and_missing_gradients():
    enc = _encoder()
    tracker = ImportanceTracker(enc)
    _backward(enc)
    first = {k: v.clone() for k, v in tracker.update().items()}
    assert len(first) == 8 and tracker.num_updates == 1
    torch.testing.assert_close(first[(0, "conv_module")], group_scores(enc.encoders[0].conv_module))
    with torch.no_grad():
        for p in enc.parameters():
            p.mul_(1.5)
    _backward(enc)
    second = tracker.measure()
    scores = tracker.update()
    for key in first:
        torch.testing.assert_close(scores[key], 0.1 * first[key] + 0.9 * second[key])
    # A module that got no gradient this time keeps its score.
    kept = scores[(1, "self_attn")].clone()
    for p in enc.encoders[1].self_attn.parameters():
        p.grad = None
    tracker.update()
    torch.testing.assert_close(tracker.scores[(1, "self_attn")], kept)
    restored = ImportanceTracker(enc)
    restored.load_state_dict(tracker.state_dict())
    assert restored.num_updates == 3
    assert torch.equal(restored.scores[(0, "feed_forward")], tracker.scores[(0, "feed_forward")])
    tracker.reset()
    assert tracker.scores == {} and tracker.num_updates == 0
    with pytest.raises(ValueError, match="method"):
        ImportanceTracker(enc, method="fisher")
    with pytest.raises(ValueError, match="smoothing"):
        ImportanceTracker(enc, smoothing=1.0)


def test_tracker_refuses_stale_scores_after_a_rebuild():
    enc = _encoder()
    tracker = ImportanceTracker(enc, method="weight")
    tracker.update()
    apply_architecture(enc, [{"self_attn": [0, 1]}, None])
    with pytest.raises(ValueError, match="call reset"):
        tracker.update()


# ---------------------------------------------------------------------- events
def _scores(enc, value=1.0):
    return {(b, name): torch.full((4,), value) for b in range(2) for name in MODULES}


def test_plan_follows_the_scores():
    enc = _encoder()
    scores = _scores(enc)
    scores[(1, "feed_forward")] = torch.tensor([0.0, 0.01, 0.02, 0.5])
    scores[(0, "self_attn")] = torch.tensor([4.0, 1.0, 5.0, 1.0])
    lists, summary = plan_reallocation(enc, scores, rho=0.1)
    prunable = 2 * (2 * 4 * COST["feed_forward"] + 4 * COST["self_attn"] + 4 * COST["conv_module"])
    assert summary.prunable_params == prunable and summary.budget == pytest.approx(0.1 * prunable)
    # Three FFN groups (1584 > 1296) go; heads 2 and 0, then the first tied groups, are copied
    # until the added cost also reaches the removed cost (340 + 340 + 528 + 528 = 1736).
    assert lists[1]["feed_forward"] == [3]
    assert lists[0]["self_attn"] == [0, 1, 2, 3, 2, 0]
    assert lists[0]["feed_forward_macaron"] == [0, 1, 2, 3, 0, 1]
    assert lists[1]["conv_module"] == [0, 1, 2, 3]
    assert summary.removed_params == 3 * COST["feed_forward"]
    assert summary.added_params == 2 * COST["self_attn"] + 2 * COST["feed_forward"]
    assert summary.widths_after[0]["self_attn"] == 6 and summary.widths_after[1]["feed_forward"] == 16
    assert enc.block_widths[0]["self_attn"] == 4  # planning changes nothing


@pytest.mark.parametrize("rho, ffn_type", [(0.05, "linear"), (0.15, "linear"), (0.3, "linear"), (0.6, "linear"),
                                           (0.15, "conv1d"), (0.3, "conv1d-linear")])
def test_event_keeps_the_parameter_count_within_one_group(rho, ffn_type):
    enc = _encoder(**FFN_CONF[ffn_type])
    tracker = ImportanceTracker(enc)
    _backward(enc)
    tracker.update()
    before = sum(p.numel() for p in enc.parameters())
    lists, summary, changes = reallocate(enc, tracker.scores, rho, noise_std=1e-3,
                                         generator=torch.Generator().manual_seed(0))
    after = sum(p.numel() for p in enc.parameters())
    assert after - before == summary.param_change
    assert 0 <= summary.param_change < max(*COST.values(), FFN_COST[ffn_type])
    assert summary.removed_params > summary.budget and summary.added_params > summary.budget
    assert enc.block_widths == summary.widths_after
    assert _encode(enc).shape == (2, 9, 16)
    tracker.reset()
    _backward(enc)
    assert set(tracker.update()) == {(b, n) for b, row in enumerate(enc.block_widths) for n, w in row.items() if w}


def test_event_can_empty_a_module_and_counts_its_bias_and_norm():
    enc = _encoder()
    scores = _scores(enc)
    scores[(1, "feed_forward")] = torch.zeros(4)
    lists, summary, _ = reallocate(enc, scores, rho=0.2)  # B = 2592 > 4 FFN groups
    assert lists[1]["feed_forward"] == [] and enc.encoders[1].feed_forward is None
    assert enc.encoders[1].norm_ff is None and enc.block_widths[1]["feed_forward"] == 0
    # The emptied module also freed its output bias (16) and pre-norm (32).
    assert (1, "feed_forward", 3) in summary.dropped and summary.removed_params > 4 * COST["feed_forward"] + 48
    assert 0 <= summary.param_change < max(COST.values())


def test_event_bad_inputs():
    enc = _encoder()
    for rho in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="rho must be in"):
            plan_reallocation(enc, _scores(enc), rho)
    scores = _scores(enc)
    del scores[(0, "conv_module")]
    with pytest.raises(ValueError, match="no score for block 0 'conv_module'"):
        plan_reallocation(enc, scores, 0.1)
    scores = _scores(enc)
    scores[(0, "conv_module")] = torch.ones(3)
    with pytest.raises(ValueError, match="3 scores but 4 groups"):
        plan_reallocation(enc, scores, 0.1)


def test_dropout_rescaling():
    assert rescale_dropout(0.1, 6, 4) == pytest.approx(0.15)
    assert rescale_dropout(0.1, 0, 4) == 0.0
    for args in ((1.0, 4, 4), (0.1, -1, 4), (0.1, 4, 0), (0.5, 8, 4)):
        with pytest.raises(ValueError):
            rescale_dropout(*args)
    enc = _encoder(dropout_rate=0.2, attention_dropout_rate=0.1)
    reference = dropout_reference_from(enc)
    # as the authors' code: FFN hidden + output, attention weights + output, conv output
    assert reference == {"ffn": DropoutReference(0.2, 0.2, 4), "mhsa": DropoutReference(0.1, 0.2, 4),
                         "conv": DropoutReference(None, 0.2, 4)}
    scores = _scores(enc)
    scores[(0, "self_attn")] = torch.tensor([9.0, 1.0, 1.0, 1.0])
    scores[(1, "feed_forward")] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    scores[(0, "conv_module")] = torch.tensor([8.0, 1.0, 1.0, 1.0])
    _, summary, changes = reallocate(enc, scores, 0.08, dropout_reference=reference)
    resized = {(c.block, c.module_name) for c in changes if c.new_module is not None}
    assert (0, "conv_module") in resized and (0, "self_attn") in resized
    for b, block in enumerate(enc.encoders):
        for spec in block.units:
            module = getattr(block, spec.module_name)
            if module is None:
                continue
            ref = reference[spec.kind]
            share = num_groups(module) / ref.groups
            if ref.internal is not None:
                assert module.dropout.p == pytest.approx(ref.internal * share)
            output = block.unit_dropout.get(spec.module_name, block.dropout.p)
            assert output == pytest.approx(ref.output * share), (b, spec.module_name)
    assert enc.encoders[1].feed_forward.dropout.p == pytest.approx(0.1)  # 2 of 4 groups left
    assert enc.encoders[1].unit_dropout["feed_forward"] == pytest.approx(0.1)
    # a reference stored by an earlier version ([internal, groups]) still loads, without output rescaling
    assert DropoutReference.from_state([0.2, 4]) == DropoutReference(0.2, None, 4)
    assert DropoutReference.from_state(reference["conv"].as_dict()) == reference["conv"]


def test_output_dropout_override_is_applied_in_training_only():
    enc = _encoder(dropout_rate=0.0)
    x, lengths = _inputs()
    enc.eval()
    with torch.no_grad():
        before = enc(x, lengths)[0]
        enc.encoders[0].unit_dropout["conv_module"] = 0.9
        torch.testing.assert_close(enc(x, lengths)[0], before)  # eval: no dropout
        enc.train()
        torch.manual_seed(0)
        assert not torch.allclose(enc(x, lengths)[0], before)


@pytest.mark.parametrize("position", [dict(rel_pos_type="legacy"),
                                      dict(pos_enc_layer_type="abs_pos", selfattention_layer_type="selfattn")])
def test_other_attention_schemes_regroup_exactly(position):
    enc = _encoder(**position).double()
    attn = enc.encoders[0].self_attn
    new = regroup(attn, [3, 1, 1, 0, 2], split_output=True)
    assert new.linear_q.weight.dtype == torch.float64 and new.h == 5
    assert hasattr(new, "linear_pos") == hasattr(attn, "linear_pos")
    x, lengths = _inputs()
    with torch.no_grad():
        emb = enc.forward_frontend(x.double(), lengths)
        _close(new(emb.xs, emb.masks, emb.pos_emb), attn(emb.xs, emb.masks, emb.pos_emb))


def test_custom_group_sizes():
    enc = _encoder()
    sizes = {"ffn": 32, "conv": 8, "mhsa": 2}
    assert identity_index_lists(enc, sizes)[0] == {name: [0, 1] for name in MODULES}
    scores = {(b, name): torch.tensor([1.0, 2.0]) for b in range(2) for name in MODULES}
    scores[(1, "conv_module")] = torch.tensor([0.0, 0.5])
    lists, summary = plan_reallocation(enc, scores, 0.02, group_sizes=sizes)
    assert lists[1]["conv_module"] == [1]
    assert summary.widths_after[1]["conv_module"] == 8
    assert summary.removed_params == 2 * COST["conv_module"]
    json.dumps(summary.as_dict())
    with pytest.raises(ValueError, match="group_sizes: unknown module kind 'heads'"):
        plan_reallocation(enc, scores, 0.02, group_sizes={"heads": 1})


@pytest.mark.parametrize("ffn_type", ["conv1d", "conv1d-linear"])
def test_resized_conv_feed_forward_equals_one_built_at_that_width(ffn_type):
    """DMAO resizes a conv FFN's hidden channels: the result is the encoder built at those widths."""
    enc = _encoder(**FFN_CONF[ffn_type])
    before = _encode(enc)
    lists = [{"feed_forward_macaron": [0, 1, 2, 3, 1, 1], "feed_forward": [0, 1, 2, 3, 2]},
             {"feed_forward": [3, 0, 2, 1], "feed_forward_macaron": [0, 1, 2, 3, 0]}]
    apply_architecture(enc, lists, split_output=True)
    _close(_encode(enc), before)  # split copies: the same function at the new widths
    lists = [{"feed_forward_macaron": [5, 0], "feed_forward": [4, 1, 1]}, {"feed_forward": []}]
    changes = apply_architecture(enc, lists, noise_std=1e-3, generator=torch.Generator().manual_seed(0))
    assert [(c.block, c.module_name, c.old_width, c.new_width) for c in changes] == [
        (0, "feed_forward_macaron", 96, 32), (0, "feed_forward", 80, 48), (1, "feed_forward", 64, 0)]
    ffn = enc.encoders[0].feed_forward
    assert isinstance(ffn, ConvFeedForward) and ffn.layer_type == ffn_type and ffn.kernel_size == 3
    assert ffn.w_1.weight.shape == (48, 16, 3)
    assert ffn.w_2.weight.shape == ((16, 48) if ffn_type == "conv1d-linear" else (16, 48, 3))
    assert enc.encoders[1].feed_forward is None and enc.encoders[1].norm_ff is None
    widths = [{"feed_forward_macaron": 32, "self_attn": 4, "conv_module": 16, "feed_forward": 48},
              {"feed_forward_macaron": 80, "self_attn": 4, "conv_module": 16, "feed_forward": 0}]
    assert enc.block_widths == widths
    direct = DynamicConformerEncoder(20, **CONF, **FFN_CONF[ffn_type], block_widths=widths).eval()
    direct.load_state_dict(enc.state_dict(), strict=True)
    torch.testing.assert_close(_encode(enc), _encode(direct), atol=0, rtol=0)
    # importance scores and a further event work on the resized modules
    tracker = ImportanceTracker(enc)
    _backward(enc)
    assert tracker.update()[(0, "feed_forward")].shape == (3,)
    reallocate(enc, tracker.scores, 0.2)
    assert _encode(enc).shape == (2, 9, 16)
