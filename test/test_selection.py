"""Simple-Top-k, Iterative-Zero-Out and the two-step schedule of supernet_ctc."""
import importlib.util
import logging
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.asr.ctc import CTC

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.model.schedule import sandwich_sizes
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel
from espnet_dynenc.selection import IterativeZeroOut, SimpleTopK
from espnet_dynenc.selection.relaxed_topk import nested_masks, relaxed_khot, straight_through_khot, top_k_units

REPO = Path(__file__).resolve().parents[1]
TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=16, attention_heads=2, linear_units=24, num_blocks=2, cnn_module_kernel=3,
           macaron_style=True, rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0)


def test_relaxed_khot_sums_to_k_and_straight_through_picks_top_k():
    scores = torch.tensor([0.3, 2.0, -1.0, 0.9, 1.5, 0.0], requires_grad=True)
    for k in (1, 3, 5):
        soft = relaxed_khot(scores, k)
        assert float(soft.sum()) == pytest.approx(k, abs=1e-5)
        assert bool((soft >= 0).all())  # at temperature 1 an entry may exceed 1; the sum is k
    hard = straight_through_khot(scores, 3)
    assert hard.tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    (hard * torch.arange(6.0)).sum().backward()
    assert scores.grad is not None and bool((scores.grad != 0).any())


def test_ties_go_to_lower_index_and_masks_nest():
    assert top_k_units(torch.zeros(5), 2) == [0, 1]
    masks = nested_masks(torch.tensor([0.1, 0.9, 0.5, 0.7, 0.2]), [1, 3, 5])
    assert masks.int().tolist() == [[0, 1, 0, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert bool((masks[0] <= masks[1]).all() and (masks[1] <= masks[2]).all())


def test_simple_topk_k_schedule():
    sel = SimpleTopK(num_units=48, k_min=16, updates_per_k_step=10, k_reduction=4)
    assert sel.current_k(0) == 44  # k starts at L - r
    assert sel.current_k(9) == 44 and sel.current_k(10) == 40
    assert sel.step1_updates == 10 * (48 - 16) // 4 == 80
    assert sel.current_k(79) == 16 and sel.current_k(1000) == 16
    assert SimpleTopK(48, 16, 5).step1_updates == 5 * 32
    scores = sel.scores.detach()
    assert bool((scores[:-1] > scores[1:]).all()) and float(scores.max() - scores.min()) < 1e-3


def test_zero_out_gates_at_each_iteration_boundary():
    sel = IterativeZeroOut(num_units=6, steps_per_iter=[3, 2], zero_out_counts=[2, 4])
    assert sel.step1_updates == 5
    with torch.no_grad():
        sel.gates.copy_(torch.tensor([10.0, 9.0, 8.0, 7.0, 6.0, 5.0]))
    assert [sel.current_k(u) for u in range(5)] == [4, 4, 4, 2, 2]
    for update in (1, 2):
        sel.after_update(update)
    assert sel.gates.tolist() == [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]
    sel.after_update(3)  # iteration 0 ends: its 2 smallest gates go to -5
    assert sel.gates.tolist() == [10.0, 9.0, 8.0, 7.0, -5.0, -5.0]
    sel.after_update(4)
    sel.after_update(5)  # the last iteration ends Step 1 without a zero-out (it would tie its gates)
    assert sel.gates.tolist() == [10.0, 9.0, 8.0, 7.0, -5.0, -5.0]
    assert sel.gates.requires_grad  # zeroed gates stay trainable
    loss = sel.extra_loss(0, frames_per_utterance=50.0)
    expected = 5.0 * 50.0 * abs((6 - float(torch.sigmoid(sel.gates).sum())) / 6 - 2 / 6)
    assert float(loss) == pytest.approx(expected)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [3, 6, 0, 5, 1, 7, 2, 4]])
def test_zero_out_middle_masks_follow_the_gates_whatever_the_unit_order(order):
    """Sizes {2, 5, 8}: the middle mask is the 5 best gates, not the 2 kept units plus 3 by index."""
    model = _model(subnet_sizes=[2, 5, 8], selector="iterative_zero_out",
                   selector_conf={"steps_per_iter": [1, 1], "zero_out_counts": [3, 6]})
    sel = model.selector
    preference = torch.empty(8)
    preference[torch.tensor(order)] = torch.arange(8.0, 0.0, -1.0)  # unit order[0] is the best
    for update in (1, 2):  # the gates after each iteration's training: ranked as ``order``
        with torch.no_grad():
            sel.gates.copy_(torch.where(sel.gates <= -5.0, sel.gates + preference / 100, preference))
        model.on_optimizer_step()
    assert not model.in_step1
    assert [sorted(torch.nonzero(m).flatten().tolist()) for m in model.subnet_masks] == [
        sorted(order[:2]), sorted(order[:5]), list(range(8))]


def test_zero_out_sparsity_weight_means_the_papers_weight_against_espnet_ctc():
    """The authors' CTC is per frame, ESPnet's per utterance: the weight scales with the
    batch's encoder frames per utterance, so loss_selector / loss_ctc keeps the paper's ratio."""
    model = _model(subnet_sizes=[4, 8], selector="iterative_zero_out",
                   selector_conf={"steps_per_iter": [2, 2], "zero_out_counts": [2, 4]}).train()
    with torch.no_grad():
        model.selector.gates.copy_(torch.linspace(-2.0, 3.0, 8))
    speech, lengths, text, text_lengths = _batch()
    frames = float(model.embed(speech, lengths).masks.sum()) / 2
    assert frames == (9 + 7) / 2  # 40 and 33 feature frames after 4x subsampling
    gap = abs((8 - float(torch.sigmoid(model.selector.gates).sum())) / 8 - 2 / 8)
    _, stats, _ = model(speech, lengths, text, text_lengths)
    assert float(stats["loss_selector"]) == pytest.approx(5.0 * frames * gap, rel=1e-5)
    # the ratio to the CTC loss: per-utterance CTC = frames x per-frame CTC
    per_frame_ctc = float(stats["loss_ctc"]) / frames
    assert float(stats["loss_selector"]) / float(stats["loss_ctc"]) == pytest.approx(5.0 * gap / per_frame_ctc, rel=1e-5)
    plain = _model(subnet_sizes=[4, 8], selector="iterative_zero_out",
                   selector_conf={"steps_per_iter": [2, 2], "zero_out_counts": [2, 4],
                                  "sparsity_weight_relative_to": "utterance_ctc"}).train()
    with torch.no_grad():
        plain.selector.gates.copy_(torch.linspace(-2.0, 3.0, 8))
    assert float(plain(*_batch())[1]["loss_selector"]) == pytest.approx(5.0 * gap, rel=1e-5)


def test_zero_out_gate_scale_works_on_the_logits():
    """gate = sigmoid(gate_scale x raw): init, zero-out, ranking, the gated subnet and the
    sparsity loss all see the logits; the parameter holds the raw values."""
    sel = IterativeZeroOut(num_units=6, steps_per_iter=[3, 2], zero_out_counts=[2, 4], init_gate=4.0,
                           zero_out_value=-6.0, gate_scale=8.0)
    assert sel.gates.tolist() == [0.5] * 6 and sel.ranking().tolist() == [4.0] * 6
    with torch.no_grad():
        sel.gates.copy_(torch.tensor([1.0, 0.75, 0.5, 0.25, 0.125, 0.0]))
    logits = torch.tensor([8.0, 6.0, 4.0, 2.0, 1.0, 0.0])
    assert torch.equal(sel.ranking(), logits)
    torch.testing.assert_close(sel.small_subnet_gates(0), torch.sigmoid(logits))
    expected = 5.0 * 50.0 * abs((6 - float(torch.sigmoid(logits).sum())) / 6 - 2 / 6)
    assert float(sel.extra_loss(0, frames_per_utterance=50.0)) == pytest.approx(expected)
    sel.after_update(3)
    assert sel.ranking().tolist() == [8.0, 6.0, 4.0, 2.0, -6.0, -6.0]
    assert sel.gates.tolist() == [1.0, 0.75, 0.5, 0.25, -0.75, -0.75]


def test_zero_out_gate_scale_multiplies_adams_step_on_the_logits():
    """Adam's first step is lr x sign(gradient) whatever the gradient's size: on the raw
    parameter, the logits move gate_scale x lr."""
    moves = {}
    for scale in (1.0, 40.0):
        sel = IterativeZeroOut(num_units=4, steps_per_iter=[5], zero_out_counts=[1], gate_scale=scale)
        optimizer = torch.optim.Adam(sel.parameters(), lr=1e-2)
        sel.extra_loss(0, frames_per_utterance=75.0).backward()
        optimizer.step()
        moves[scale] = (10.0 - sel.ranking()).tolist()
    assert moves[1.0] == pytest.approx([1e-2] * 4, rel=1e-3)
    assert moves[40.0] == pytest.approx([0.4] * 4, rel=1e-3)


def test_zero_out_state_dict_holds_the_logits_whatever_the_gate_scale():
    plain = IterativeZeroOut(num_units=4, steps_per_iter=[2], zero_out_counts=[1])
    with torch.no_grad():
        plain.gates.copy_(torch.tensor([6.0, -5.0, 2.0, 3.0]))
    assert list(plain.state_dict()) == ["gates"] and plain.state_dict()["gates"].tolist() == [6.0, -5.0, 2.0, 3.0]
    scaled = IterativeZeroOut(num_units=4, steps_per_iter=[2], zero_out_counts=[1], gate_scale=4.0)
    scaled.load_state_dict(plain.state_dict())  # a checkpoint from before the option
    assert scaled.ranking().tolist() == [6.0, -5.0, 2.0, 3.0] and scaled.gates.tolist() == [1.5, -1.25, 0.5, 0.75]
    assert list(scaled.state_dict()) == ["gates"] and scaled.state_dict()["gates"].tolist() == [6.0, -5.0, 2.0, 3.0]
    other = IterativeZeroOut(num_units=4, steps_per_iter=[2], zero_out_counts=[1], gate_scale=2.0)
    other.load_state_dict(scaled.state_dict())
    assert other.ranking().tolist() == [6.0, -5.0, 2.0, 3.0]
    plain.load_state_dict(scaled.state_dict())
    assert plain.gates.tolist() == [6.0, -5.0, 2.0, 3.0]
    # through the model: the selector is a child module, Step 2's frozen copy goes through it too
    conf = {"steps_per_iter": [1, 1], "zero_out_counts": [2, 4]}
    old = _model(subnet_sizes=[4, 8], selector="iterative_zero_out", selector_conf=conf)
    new = _model(subnet_sizes=[4, 8], selector="iterative_zero_out", selector_conf={**conf, "gate_scale": 5.0})
    with torch.no_grad():
        old.selector.gates.copy_(torch.linspace(-2.0, 3.0, 8))
    new.load_state_dict(old.state_dict())
    torch.testing.assert_close(new.selector.ranking(), torch.linspace(-2.0, 3.0, 8))


def _simulate_step1(selector, compress, seed=0, task_pull=1.0, frames=75.0):
    """Step 1 of the gates alone: the mini_synth recipe's Adam and one-cycle LR (max 0.0015,
    4200 updates, 25% warm-up) compressed ``compress`` times (fewer updates, each lr x
    compress: the same sums of learning rates), the real sparsity loss and zero-out, and a
    stand-in task loss pulling each gate by a fixed random preference (at most 1/5 of the
    sparsity pull). Returns (target, sum of gates, loss_selector) after each iteration."""
    units = selector.num_units
    preference = torch.rand(units, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(selector.parameters(), lr=0.0015 * compress, weight_decay=1e-6)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.0015 * compress, total_steps=4200 // compress, pct_start=0.25,
        anneal_strategy="linear", div_factor=25.0, final_div_factor=1000.0)
    ends = []
    for update in range(selector.step1_updates):
        optimizer.zero_grad()
        task = -task_pull * frames * (preference * selector.small_subnet_gates(update)).sum() / units
        (task + selector.extra_loss(update, frames)).backward()
        optimizer.step()
        scheduler.step()
        if update + 1 in selector.boundaries:
            with torch.no_grad():
                ends.append((selector.current_k(update), float(torch.sigmoid(selector.ranking()).sum()),
                             float(selector.extra_loss(update, frames))))
        selector.after_update(update + 1)
    return ends


def test_zero_out_sparsity_binds_at_a_small_learning_rate_budget_with_gate_scale():
    """The recipe's Step 1 (24 units, 8 iterations zeroing 2, 4, ..., 16; learning rates
    summing to ~1.7) compressed 5 times. With the paper's gates (start 10, Adam moves them
    by ~lr per update) the sum of the gates stays ~2 above every target and the sparsity
    loss never binds; with gate_scale 50 and init_gate 4 it meets each target."""
    def selector(**options):
        return IterativeZeroOut(num_units=24, steps_per_iter=[42] * 8, zero_out_counts=list(range(2, 17, 2)),
                                **options)

    full_gap = 5.0 * 75.0 / 24  # loss_selector per unit the sum of the gates is off its target
    for target, gate_sum, loss in _simulate_step1(selector(gate_scale=50.0, init_gate=4.0), compress=5):
        assert gate_sum == pytest.approx(target, abs=0.5)
        assert loss < 0.5 * full_gap
    for target, gate_sum, loss in _simulate_step1(selector(), compress=5):
        assert gate_sum > target + 1.5
        assert loss > 1.5 * full_gap


def test_simulate_zero_out_tool_replays_a_config(tmp_path, capsys):
    """tools/simulate_zero_out.py: the config's optimizer and OneCycleLR on the gates, one
    line per iteration; a scheduler it does not rebuild is refused by name."""
    spec = importlib.util.spec_from_file_location("simulate_zero_out", REPO / "tools" / "simulate_zero_out.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = {"encoder": "dynamic_conformer", "encoder_conf": {"num_blocks": 2, "macaron_style": True},
              "model": "supernet_ctc",
              "model_conf": {"subnet_sizes": [4, 8], "selector": "iterative_zero_out",
                             "selector_conf": {"steps_per_iter": [20, 20], "zero_out_counts": [2, 4]}},
              "optim": "adam", "optim_conf": {"lr": 0.01},
              "scheduler": "onecyclelr", "scheduler_conf": {"max_lr": 0.01, "total_steps": 100}}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert tool.main([str(path), "--gate-scale", "20", "--init-gate", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "selector_conf overrides: {'gate_scale': 20.0, 'init_gate': 3.0}"
    rows = [line.split() for line in lines[3:]]
    assert [(row[0], row[1], row[3]) for row in rows] == [("0", "20", "6"), ("1", "20", "4")]
    assert all(len(row) == 8 and row[7].endswith(f"/{8 - int(row[3])}") for row in rows)
    config["scheduler"] = "warmuplr"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(SystemExit):
        tool.main([str(path)])
    assert "scheduler 'warmuplr' is not simulated" in capsys.readouterr().err


def test_relaxation_floor_is_the_dtype_tiny():
    """A score gap of 30: 1 - p rounds to 0 and the floor decides; with float32 tiny the
    first unit is taken once and the rest is shared, as the relaxation intends."""
    scores = torch.tensor([30.0, 0.0, 0.0])
    assert relaxed_khot(scores, 2).tolist() == pytest.approx([1.0, 0.5, 0.5], abs=1e-6)
    assert relaxed_khot(scores, 2, eps=1e-10)[0] > 1.9  # the former floor: the first unit counted twice
    normal = torch.tensor([0.3, 2.0, -1.0, 0.9])
    torch.testing.assert_close(relaxed_khot(normal, 2), relaxed_khot(normal, 2, eps=1e-10))


def test_sandwich_rule_sizes():
    assert sandwich_sizes([12, 24, 48], 7) == [12, 24, 48]
    draws = {tuple(sandwich_sizes([12, 24, 36, 48], u)) for u in range(40)}
    assert draws == {(12, 24, 48), (12, 36, 48)}
    assert sandwich_sizes([12, 24, 36, 48], 5) == sandwich_sizes([12, 24, 36, 48], 5)  # same on every rank


def _model(**conf):
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, **ENC)
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None,
        preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 16),
        joint_network=None, **conf,
    )


def _batch():
    torch.manual_seed(1)
    return torch.randn(2, 40, 20), torch.tensor([40, 33]), torch.tensor([[2, 3], [4, -1]]), torch.tensor([2, 1])


def test_step1_runs_supernet_and_gated_smallest_then_switches_on_optimizer_updates():
    model = _model(subnet_sizes=[4, 6, 8], selector="simple_topk",
                   selector_conf={"updates_per_k_step": 2, "k_reduction": 2})
    assert model.selector.step1_updates == 4
    model.train()
    passes = model.training_passes()
    assert [p.size for p in passes] == [8, 4]
    assert passes[1].unit_gates is not None and all(passes[1].mask)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for update in range(6):
        optimizer.zero_grad()
        loss, _, _ = model(*_batch())
        loss.backward()
        if update < 4:
            assert model.selector.scores.grad is not None and bool((model.selector.scores.grad != 0).any())
        optimizer.step()
        assert int(model.num_updates) == update + 1
    assert not model.in_step1
    frozen = model.selector.scores.detach().clone()
    optimizer.zero_grad()
    model(*_batch())[0].backward()
    assert torch.equal(model.selector.scores.grad, torch.zeros_like(frozen))  # zero, not missing
    optimizer.step()
    assert torch.equal(model.selector.scores, frozen)  # Step 2: scores stay frozen
    reloaded = _model(subnet_sizes=[4, 6, 8], selector="simple_topk",
                      selector_conf={"updates_per_k_step": 2, "k_reduction": 2})
    reloaded.load_state_dict(model.state_dict())
    assert not reloaded.selector.scores.requires_grad  # loaded in Step 2: left out of DDP
    passes = model.training_passes()
    assert [p.size for p in passes] == [4, 6, 8]
    assert all(p.unit_gates is None for p in passes)
    expected = nested_masks(model.selector.ranking(), [4, 6, 8])
    assert torch.equal(model.subnet_masks, expected)


def test_an_unrelated_optimizer_does_not_count():
    model = _model(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 1})
    other = torch.nn.Linear(2, 2)
    torch.optim.SGD(other.parameters(), lr=0.1).step()
    assert int(model.num_updates) == 0


def test_step2_stochastic_depth_only_outside_smallest_subnet():
    model = _model(subnet_sizes=[4, 8], subnet_masks=["1100 1100", "1111 1111"], sandwich_stochastic_depth=0.3)
    model.train()
    supernet = model.training_passes()[-1]
    assert supernet.unit_drop_rates == [0.0, 0.0, 0.3, 0.3, 0.0, 0.0, 0.3, 0.3]
    assert model.training_passes()[0].unit_drop_rates is None


def test_zero_out_adds_its_sparsity_loss_in_step1():
    model = _model(subnet_sizes=[4, 8], selector="iterative_zero_out",
                   selector_conf={"steps_per_iter": [2, 2], "zero_out_counts": [2, 4]})
    model.train()
    _, stats, _ = model(*_batch())
    assert "loss_selector" in stats


@pytest.mark.parametrize("conf, message", [
    ({"selector": "magic"}, "selector 'magic' is unknown"),
    ({"selector": "simple_topk", "selector_conf": {"updates_per_k_step": 1, "k_min": 2}}, "k_min=2 must be the smallest"),
    ({"selector": "simple_topk", "selector_conf": {"updates_per_k_step": 1, "bogus": 1}}, "selector_conf for simple_topk"),
    ({"selector": "simple_topk", "selector_conf": {"updates_per_k_step": 0}}, "updates_per_k_step must be > 0"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1, 1], "zero_out_counts": [3, 2]}},
     "strictly increasing"),
    ({"selector": "simple_topk", "subnet_masks": ["1111 0000", "1111 1111"]}, "not both"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1], "zero_out_counts": [2],
                                                          "sparsity_weight_relative_to": "batch"}},
     "sparsity_weight_relative_to 'batch' is unknown"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1], "zero_out_counts": [2],
                                                          "gate_scale": 0}}, "gate_scale must be > 0, got 0"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1], "zero_out_counts": [2],
                                                          "gate_scale": "50"}},
     "gate_scale must be a finite number, got '50'"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1], "zero_out_counts": [2],
                                                          "init_gate": float("inf")}},
     "init_gate must be a finite number, got inf"),
    ({"selector": "iterative_zero_out", "selector_conf": {"steps_per_iter": [1], "zero_out_counts": [2],
                                                          "init_gate": 2.0, "zero_out_value": 3.0}},
     "zero_out_value 3.0 must be below init_gate 2.0"),
    ({"sandwich_stochastic_depth": 1.0}, "sandwich_stochastic_depth must be in"),
])
def test_bad_selector_configuration(conf, message):
    with pytest.raises(ValueError, match=message):
        _model(subnet_sizes=[4, 8], **conf)


def test_checkpointed_subnets_give_the_same_loss_and_gradients():
    results = []
    for checkpointed in (False, True):
        model = _model(subnet_sizes=[4, 6, 8], subnet_masks=["1100 1100", "1110 1110", "1111 1111"],
                       sandwich_stochastic_depth=0.5, checkpoint_subnets=checkpointed).train()
        torch.manual_seed(5)
        loss, _, _ = model(*_batch())
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_zero_out_logs_the_sum_of_gates_against_each_iterations_target(caplog):
    selector = IterativeZeroOut(6, steps_per_iter=[2, 2], zero_out_counts=[2, 4], init_gate=0.0)
    with caplog.at_level(logging.INFO):
        selector.after_update(1)  # not an iteration's end: nothing
        assert not caplog.records
        selector.after_update(2)
        selector.after_update(4)
    first, last = (r.getMessage() for r in caplog.records)
    # sigmoid(0) = 0.5 for six gates: 3.0 against 6 - 2 = 4, then two gates zeroed (-5)
    assert first == ("Iterative-Zero-Out: iteration 1 ends after update 2: sum of gates 3.000, target 4 "
                     "(sparsity term before its weight: 0.1667)")
    assert last.startswith("Iterative-Zero-Out: iteration 2 ends after update 4: sum of gates 2.013, target 2")
