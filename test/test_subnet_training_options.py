"""supernet_ctc's options for smaller sizes as good as trained alone: in-place distillation,
size-aware loss weights, per-pass regularization and the update the subnets start at."""
from argparse import Namespace

import pytest
import torch
from espnet2.asr.ctc import CTC

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.espnet_task import training_updates
from espnet_dynenc.model.distillation import DistillationConfig, Teacher, distillation_loss
from espnet_dynenc.model.schedule import SubnetPass, regularize_passes, supernet_first
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=16, attention_heads=2, linear_units=24, num_blocks=2, cnn_module_kernel=3,
           macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0)
DROPOUT = dict(dropout_rate=0.2, positional_dropout_rate=0.2, attention_dropout_rate=0.1)
FIXED = dict(subnet_sizes=[3, 8], subnet_masks=["1010 0010", "1111 1111"])


def _model(encoder_conf=None, **conf) -> ESPnetSupernetCTCModel:
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, **{**ENC, **(encoder_conf or {})})
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None,
        preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 16),
        joint_network=None, **conf,
    )


def _batch(copies: int = 1):
    torch.manual_seed(1)
    speech, lengths = torch.randn(2, 40, 20), torch.tensor([40, 33])
    text, text_lengths = torch.tensor([[2, 3], [4, -1]]), torch.tensor([2, 1])
    return speech.repeat(copies, 1, 1), lengths.repeat(copies), text.repeat(copies, 1), text_lengths.repeat(copies)


def _log_probs(*shape, seed=0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)


# ----------------------------------------------------------------------------- the term
def test_distillation_term_is_zero_for_equal_posteriors_and_positive_otherwise():
    teacher_log_probs = _log_probs(2, 5, 6)
    teacher = Teacher.from_log_probs(teacher_log_probs, torch.tensor([5, 3]), "all", blank_id=0)
    assert float(distillation_loss(teacher_log_probs.clone(), teacher)) == 0.0
    assert float(distillation_loss(_log_probs(2, 5, 6, seed=1), teacher)) > 0.0
    # a difference on padded frames only is no difference
    padded_only = teacher_log_probs.clone()
    padded_only[1, 3:] = _log_probs(2, 6, seed=2)
    assert float(distillation_loss(padded_only, teacher)) == 0.0


def test_teacher_gets_no_gradient_from_the_term():
    source = torch.randn(2, 5, 6, requires_grad=True)
    student = torch.randn(2, 5, 6, requires_grad=True)
    teacher = Teacher.from_log_probs(source.log_softmax(-1), torch.tensor([5, 4]), "all", blank_id=0)
    assert not teacher.log_probs.requires_grad
    distillation_loss(student.log_softmax(-1), teacher).backward()
    assert source.grad is None and student.grad is not None and bool((student.grad != 0).any())


def test_in_the_model_the_term_trains_the_student_pass_only():
    """The small subnet's term: no gradient reaches the supernet's head or the units only the
    supernet runs (unit 1, block 0's self-attention, is not in mask 1010 0010)."""
    model = _model(**FIXED, inplace_distillation={"weight": 1.0}).train()
    speech, lengths, text, text_lengths = _batch()
    embedded = model.embed(speech, lengths)
    stats = {}
    supernet = model._subnet_loss(embedded, SubnetPass(8, model.mask_for(8), 1.0), text, text_lengths, stats, None)
    small = model._subnet_loss(embedded, SubnetPass(3, model.mask_for(3), 0.3), text, text_lengths, stats,
                               supernet.teacher)
    small.loss_distill.backward()
    assert model.ctc_for(8).ctc_lo.weight.grad is None
    assert model.encoder.encoders[0].self_attn.linear_q.weight.grad is None
    assert model.ctc_for(3).ctc_lo.weight.grad is not None
    assert model.encoder.encoders[0].feed_forward_macaron.w_1.weight.grad is not None  # unit 0: shared


def test_frames_and_normalisation():
    """Summed over the chosen valid frames and divided by the utterances, as ESPnet's CTC loss."""
    blank_heavy = torch.full((2, 4, 3), -5.0)
    blank_heavy[..., 0] = 0.0  # argmax blank ...
    blank_heavy[0, 1, :] = torch.tensor([-5.0, 0.0, -5.0])  # ... except frame 1 of utterance 0
    blank_heavy[1, 0, :] = torch.tensor([-5.0, -5.0, 0.0])  # and frame 0 of utterance 1
    blank_heavy[1, 3, :] = torch.tensor([-5.0, 0.0, -5.0])  # a padded frame: never counted
    teacher_log_probs = blank_heavy.log_softmax(-1)
    student = _log_probs(2, 4, 3, seed=3)
    per_frame = (teacher_log_probs.exp() * (teacher_log_probs - student)).sum(-1)
    lengths = torch.tensor([4, 2])
    every = Teacher.from_log_probs(teacher_log_probs, lengths, "all", blank_id=0)
    assert every.frames.tolist() == [[True] * 4, [True, True, False, False]]
    torch.testing.assert_close(distillation_loss(student, every), (per_frame[0].sum() + per_frame[1, :2].sum()) / 2)
    non_blank = Teacher.from_log_probs(teacher_log_probs, lengths, "non_blank", blank_id=0)
    assert non_blank.frames.tolist() == [[False, True, False, False], [True, False, False, False]]
    torch.testing.assert_close(distillation_loss(student, non_blank), (per_frame[0, 1] + per_frame[1, 0]) / 2)


def test_the_term_scales_with_the_batch_as_the_ctc_loss_does():
    """Twice the same utterances: per-utterance normalisation gives the same CTC loss and the
    same distillation term."""
    model = _model(**FIXED, inplace_distillation={"frames": "non_blank"}).eval()
    with torch.no_grad():
        _, once, _ = model(*_batch(1))
        _, twice, _ = model(*_batch(2))
    for key in ("loss_ctc_3", "loss_distill_3", "loss_distill"):
        torch.testing.assert_close(once[key], twice[key], msg=key)


def test_weight_warm_up_and_ramp_follow_the_updates():
    config = DistillationConfig(weight=2.0, warmup_updates=3, ramp_updates=4)
    assert [config.weight_at(u) for u in range(9)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert DistillationConfig(weight=0.5).weight_at(0) == 0.5


def test_the_loss_adds_the_weighted_terms_after_the_warm_up():
    model = _model(**FIXED, inplace_distillation={"weight": 0.5, "warmup_updates": 1}).train()
    torch.manual_seed(2)
    loss, stats, _ = model(*_batch())
    assert float(stats["loss_distill"]) == 0.0 and float(stats["loss_distill_3"]) > 0.0  # logged, not added
    torch.testing.assert_close(loss, stats["loss_ctc_8"] + 0.3 * stats["loss_ctc_3"])
    model.num_updates += 1
    loss, stats, _ = model(*_batch())
    torch.testing.assert_close(stats["loss_distill"], 0.5 * stats["loss_distill_3"])
    torch.testing.assert_close(loss, stats["loss_ctc_8"] + 0.3 * stats["loss_ctc_3"]
                               + stats["loss_distill"])


def test_supernet_pass_runs_first_in_step1_and_step2():
    passes = [SubnetPass(3, [True] * 8, 0.3), SubnetPass(5, [True] * 8, 0.3), SubnetPass(8, [True] * 8, 1.0)]
    assert [p.size for p in supernet_first(passes, 8)] == [8, 3, 5]
    # Step 1 of a selector: the gated smallest subnet learns from the supernet too
    model = _model(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 2},
                   inplace_distillation={}).train()
    assert model.in_step1
    _, stats, _ = model(*_batch())
    assert float(stats["loss_distill_4"]) > 0.0
    # Step 2, the sandwich rule (which lists the supernet last)
    model = _model(subnet_sizes=[2, 4, 6, 8], inplace_distillation={}).train()
    sizes = [p.size for p in model.training_passes()]
    assert len(sizes) == 3 and sizes[-1] == 8
    _, stats, _ = model(*_batch())
    assert {key for key in stats if key.startswith("loss_distill_")} == {f"loss_distill_{s}" for s in sizes[:2]}


def test_exits_of_pruning_on_demand_and_aux_loss_heads_learn_from_the_full_model():
    pod = _model(encoder_conf={"interctc_layer_idx": [1]}, interctc_weight=0.3,
                 inplace_distillation={"weight": 2.0}).train()
    _, stats, _ = pod(*_batch())
    assert float(stats["loss_distill_interctc_layer1"]) > 0.0
    torch.testing.assert_close(stats["loss_distill"], 2.0 * 0.3 * stats["loss_distill_interctc_layer1"])
    no_exits = _model(encoder_conf={"interctc_layer_idx": [1]}, interctc_weight=0.3, subnet_sizes=[4, 8],
                      inplace_distillation={"exits": False}).train()
    _, stats, _ = no_exits(*_batch())
    assert "loss_distill_interctc_layer1" not in stats and "loss_distill_4" in stats
    aux = _model(subnet_sizes=[4, 8], inplace_distillation={}).eval()  # early exits: the first 1 / 2 blocks
    with torch.no_grad():
        _, stats, _ = aux(*_batch())
    assert float(stats["loss_distill_4"]) > 0.0 and "loss_distill_8" not in stats


# ----------------------------------------------------------------------------- loss weights
def test_size_aware_weights_are_one_minus_exp_of_the_per_frame_loss_and_detached():
    model = _model(**FIXED, subnet_loss_weighting="size_aware").train()
    speech, lengths, text, text_lengths = _batch()
    torch.manual_seed(3)
    loss, stats, _ = model(speech, lengths, text.clone(), text_lengths)
    frames = float(model.embed(speech, lengths).masks.sum()) / 2
    expected = 1.0 - torch.exp(-stats["loss_ctc_3"] / frames)
    torch.testing.assert_close(stats["loss_weight_3"], expected)
    assert not stats["loss_weight_3"].requires_grad and "loss_weight_8" not in stats
    torch.testing.assert_close(loss, stats["loss_ctc_8"] + expected * stats["loss_ctc_3"])
    # the gradient is that of the loss with the weight held constant
    loss.backward()
    grad = model.ctc_for(3).ctc_lo.weight.grad.clone()
    model.zero_grad()
    fixed = _model(**FIXED, subnet_loss_weight=float(expected)).train()
    fixed.load_state_dict(model.state_dict())
    torch.manual_seed(3)
    fixed(speech, lengths, text.clone(), text_lengths)[0].backward()
    torch.testing.assert_close(grad, fixed.ctc_for(3).ctc_lo.weight.grad)
    assert 0.0 < float(expected) < 1.0


# ----------------------------------------------------------------------------- regularization
def _dropout_rates_seen(model, subnet, embedded):
    seen = []
    hooks = [m.register_forward_pre_hook(lambda module, args: seen.append(module.p))
             for m in model.encoder.encoders.modules() if isinstance(m, torch.nn.Dropout)]
    try:
        model.encode_subnet(embedded, subnet)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_supernet_only_regularization_leaves_subnet_passes_without_dropout_or_stochastic_depth():
    # layer norm in the conv modules: batch norm would normalise by the batch in training
    model = _model(encoder_conf={**DROPOUT, "stochastic_depth_rate": 0.5, "conv_norm": "layer_norm"}, **FIXED,
                   pass_regularization="supernet_only", sandwich_stochastic_depth=0.3).train()
    speech, lengths, _, _ = _batch()
    small, supernet = model.training_passes()
    assert (small.size, small.dropout_scale, small.stochastic_depth) == (3, 0.0, False)
    assert (supernet.size, supernet.dropout_scale, supernet.stochastic_depth) == (8, 1.0, True)
    embedded = model.embed(speech, lengths)
    assert embedded.pending_dropout == 0.2  # the frontend's dropout, left to each pass
    outs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        outs.append(model.encode_subnet(embedded, small)[0])
    model.eval()
    with torch.no_grad():
        reference = model.encode_subnet(model.embed(speech, lengths), SubnetPass(3, model.mask_for(3), 0.3))[0]
    torch.testing.assert_close(outs[0], reference)
    torch.testing.assert_close(outs[1], reference)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model.encode_subnet(embedded, supernet)[0],
                              model.encode_subnet(embedded, supernet)[0])  # the supernet pass is regularized


def test_kept_fraction_scales_each_pass_dropout_and_puts_the_rates_back():
    model = _model(encoder_conf=DROPOUT, **FIXED, pass_regularization="kept_fraction").train()
    speech, lengths, _, _ = _batch()
    embedded = model.embed(speech, lengths)
    small, supernet = model.training_passes()
    assert small.dropout_scale == pytest.approx(3 / 8) and supernet.dropout_scale == 1.0
    base = sorted({m.p for m in model.encoder.encoders.modules() if isinstance(m, torch.nn.Dropout)})
    assert base == [0.1, 0.2]
    # the small subnet (1010 0010) runs no self-attention, so no attention dropout
    assert sorted(set(_dropout_rates_seen(model, small, embedded))) == pytest.approx([0.2 * 3 / 8])
    assert sorted(set(_dropout_rates_seen(model, supernet, embedded))) == [0.1, 0.2]
    assert sorted({m.p for m in model.encoder.modules() if isinstance(m, torch.nn.Dropout)}) == [0.1, 0.2]


def test_shared_regularization_is_the_paper_path():
    model = _model(encoder_conf=DROPOUT, **FIXED).train()
    assert model.embed(*_batch()[:2]).pending_dropout == 0.0  # frontend dropout applied once, for every pass
    assert all(p.dropout_scale == 1.0 and p.stochastic_depth for p in model.training_passes())
    assert regularize_passes(model.training_passes(), "shared", 8) == model.training_passes()


# ----------------------------------------------------------------------------- checkpointing
@pytest.mark.parametrize("schedule", [
    dict(FIXED, sandwich_stochastic_depth=0.3, pass_regularization="supernet_only"),
    dict(subnet_sizes=[4, 6, 8], subnet_masks=["1100 1100", "1110 1110", "1111 1111"],
         pass_regularization="kept_fraction"),
    dict(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 2},
         step1_stochastic_depth=0.3, pass_regularization="supernet_only"),
], ids=["step2_supernet_only", "step2_kept_fraction", "step1_supernet_only"])
def test_checkpointed_subnets_give_the_same_gradients_with_the_options(schedule):
    encoder_conf = {**DROPOUT, "interctc_layer_idx": [1]}
    options = dict(inplace_distillation={"weight": 1.0, "frames": "non_blank"}, subnet_loss_weighting="size_aware",
                   interctc_weight=0.3)
    results = []
    for checkpointed in (False, True):
        model = _model(encoder_conf=encoder_conf, **schedule, **options, checkpoint_subnets=checkpointed).train()
        torch.manual_seed(5)
        loss, stats, _ = model(*_batch())
        loss.backward()
        results.append((loss.detach(), stats, {n: p.grad.clone() for n, p in model.named_parameters()
                                               if p.grad is not None}))
    (loss_a, stats_a, grads_a), (loss_b, stats_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert float(stats_a["loss_distill"]) > 0.0
    torch.testing.assert_close(stats_a["loss_distill"], stats_b["loss_distill"])
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4, msg=name)


# ----------------------------------------------------------------------------- when subnets start
def test_subnets_start_at_an_update_and_unused_parts_get_zero_gradients():
    model = _model(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 2},
                   subnet_start_update=2, inplace_distillation={}).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    sizes = []
    for _ in range(3):
        sizes.append([p.size for p in model.training_passes()])
        optimizer.zero_grad()
        loss, stats, _ = model(*_batch())
        loss.backward()
        if len(sizes) == 1:
            assert float(model.ctc_for(4).ctc_lo.weight.grad.abs().sum()) == 0.0  # a zero, not None: DDP is fed
            assert float(model.selector.scores.grad.abs().sum()) == 0.0
            assert "loss_distill_4" not in stats
        optimizer.step()
    assert sizes == [[8], [8], [8, 4]]


def test_subnet_start_fraction_is_resolved_from_the_training_length():
    model = _model(**FIXED, subnet_start_fraction=0.25).train()
    with pytest.raises(ValueError, match="subnet_start_fraction 0.25 needs the number of training updates"):
        model.training_passes()
    model.des.set_training_updates(training_updates(Namespace(num_iters_per_epoch=8, accum_grad=2, max_epoch=3)))
    assert model.des.subnet_start() == 3  # 0.25 x 12 updates
    with pytest.raises(ValueError, match="set num_iters_per_epoch, or give subnet_start_update"):
        training_updates(Namespace(num_iters_per_epoch=None, accum_grad=1, max_epoch=3))
    selector = _model(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 1},
                      subnet_start_fraction=0.5)
    with pytest.raises(ValueError, match=r"subnet_start_fraction 0.5 \(update 5 of 10\) comes at or after the end"):
        selector.des.set_training_updates(10)


# ----------------------------------------------------------------------------- bad values
@pytest.mark.parametrize("conf, message", [
    ({"inplace_distillation": {"weight": 0}}, r"inplace_distillation.weight must be a number > 0, got 0"),
    ({"inplace_distillation": {"weight": "1"}}, r"inplace_distillation.weight must be a number > 0, got '1'"),
    ({"inplace_distillation": {"frames": "speech"}},
     r"inplace_distillation.frames must be one of \('all', 'non_blank'\), got 'speech'"),
    ({"inplace_distillation": {"warmup_updates": -1}}, r"inplace_distillation.warmup_updates must be a whole number"),
    ({"inplace_distillation": {"ramp_updates": 1.5}}, r"inplace_distillation.ramp_updates must be a whole number"),
    ({"inplace_distillation": {"exits": "yes"}}, r"inplace_distillation.exits must be true or false, got 'yes'"),
    ({"inplace_distillation": {"temperature": 2}}, r"inplace_distillation: unknown field\(s\) \['temperature'\]"),
    ({"subnet_loss_weighting": "focal"}, "subnet_loss_weighting 'focal' is unknown"),
    ({"pass_regularization": "none"}, "pass_regularization 'none' is unknown"),
    ({"subnet_start_update": -1}, "subnet_start_update must be >= 0, got -1"),
    ({"subnet_start_fraction": 1.0}, r"subnet_start_fraction must be in \[0, 1\), got 1.0"),
    ({"subnet_start_update": 2, "subnet_start_fraction": 0.5}, "give subnet_start_update or subnet_start_fraction"),
    ({"selector": "simple_topk", "selector_conf": {"updates_per_k_step": 1}, "subnet_start_update": 4,
      "subnet_masks": None}, r"subnet_start_update comes at or after the end of the selector's Step 1 \(update 4\)"),
])
def test_bad_option_values_are_refused_by_name(conf, message):
    with pytest.raises(ValueError, match=message):
        _model(**{**dict(FIXED, subnet_sizes=[4, 8], subnet_masks=None), **conf})


@pytest.mark.parametrize("conf, message", [
    ({"pass_regularization": "supernet_only"}, r"pass_regularization: 'supernet_only' acts on the smaller subnets"),
    ({"subnet_loss_weighting": "size_aware"}, r"subnet_loss_weighting: 'size_aware' acts on the smaller subnets"),
    ({"subnet_start_update": 3}, "subnet_start_update: 3 acts on the smaller subnets"),
    ({"inplace_distillation": {}}, "inplace_distillation: nothing to distil into"),
])
def test_options_for_smaller_sizes_are_refused_on_a_single_size_model(conf, message):
    with pytest.raises(ValueError, match=message):
        _model(**conf)
