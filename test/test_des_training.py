"""Dynamic Encoder Size training through ESPnet's own trainer: switch, resume, report."""
import shutil

import pytest
import torch
import yaml

from tiny_asr import tiny_corpus, train_tiny_model, train_two_processes, write_config

pytestmark = pytest.mark.slow
SELECTOR = {"selector": "simple_topk", "selector_conf": {"updates_per_k_step": 1, "k_reduction": 1}}
TRAIN = {"batch_size": 2, "accum_grad": 2, "max_epoch": 3, "optim_conf": {"lr": 0.01}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("des"))


def _final_state(exp):
    # ESPnet's checkpoint holds optimizer and reporter state too (not weights only).
    return torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["model"]


def test_switch_after_step1_updates_with_accum_grad_and_report(corpus):
    root, train, valid, tokens = corpus
    config = write_config(root, model_conf=SELECTOR, extra=TRAIN, name="des.yaml")
    exp = train_tiny_model(root, config, train, valid, tokens, exp_name="exp_des")
    log = (exp / "train.log").read_text()
    # 12 utterances / batch 2 = 6 iterations per epoch, accum_grad 2: 3 updates per epoch.
    # Step 1: k = 7, 6, 5, 4 for one update each -> the switch after update 4.
    assert "DES: Step 1 ends after update 4" in log
    for k in (7, 6, 5, 4):
        assert f"k={k}," in log
    state = _final_state(exp)
    assert int(state["num_updates"]) == 9
    report = yaml.safe_load((exp / "subnets.yaml").read_text())
    assert report["num_updates"] == 9 and set(report["subnets"]) == {4, 8}
    small = report["subnets"][4]
    assert small["mask"].replace(" ", "").count("1") == 4
    assert small["mask"] != "1111 0000"  # learned, not the first k units
    assert small["parameters"] < report["subnets"][8]["parameters"]
    masks = state["subnet_masks"]
    assert bool((masks[0] <= masks[1]).all())
    assert (exp / "subnets.png").stat().st_size > 0
    assert (exp / "selection_scores.png").stat().st_size > 0
    assert len((exp / "selection_scores.tsv").read_text().splitlines()) == 4


def test_interrupted_and_resumed_run_selects_the_same_masks(corpus):
    root, train, valid, tokens = corpus
    full = write_config(root, model_conf=SELECTOR, extra=TRAIN, name="full.yaml")
    exp_full = train_tiny_model(root, full, train, valid, tokens, exp_name="exp_full")
    first = write_config(root, model_conf=SELECTOR, extra={**TRAIN, "max_epoch": 1}, name="part.yaml")
    exp_part = train_tiny_model(root, first, train, valid, tokens, exp_name="exp_part")
    assert int(_final_state(exp_part)["num_updates"]) == 3  # interrupted inside Step 1
    # Resume: same experiment dir, the full config, ESPnet's --resume (on by default).
    shutil.copy(full, root / "part.yaml")
    exp_resumed = train_tiny_model(root, root / "part.yaml", train, valid, tokens, exp_name="exp_part")
    a, b = _final_state(exp_full), _final_state(exp_resumed)
    assert int(b["num_updates"]) == 9
    assert torch.equal(a["subnet_masks"], b["subnet_masks"])
    torch.testing.assert_close(a["selector.scores"], b["selector.scores"])


def test_two_process_training_through_espnet_launcher_with_every_subnet_option(corpus):
    """ESPnet's launcher in its multi-host mode, with an ``ssh`` that runs on this machine: two
    gloo ranks, four sizes (a random middle size per Step-2 update, the same on both ranks), no
    unused_parameters, Step 1 then Step 2, and every option of the subnet passes at once: in-place
    distillation (non-blank frames, ramped), size-aware weights, dropout in the supernet pass only,
    subnets starting at a fraction of the training, recomputed subnet activations. After every
    update both ranks hold the same parameters, bit for bit."""
    root, train, valid, tokens = corpus
    conf = {"subnet_sizes": [2, 4, 6, 8], "selector": "simple_topk",
            "selector_conf": {"updates_per_k_step": 1, "k_reduction": 2}, "log_sandwich_draws": True,
            "sandwich_stochastic_depth": 0.2,
            "inplace_distillation": {"weight": 1.0, "ramp_updates": 2, "frames": "non_blank"},
            "subnet_loss_weighting": "size_aware", "pass_regularization": "supernet_only",
            "subnet_start_fraction": 0.2, "checkpoint_subnets": True, "log_parameter_checksums": True}
    config = write_config(root, model_conf=conf, encoder_conf={"dropout_rate": 0.1, "positional_dropout_rate": 0.1},
                          extra={"batch_size": 4, "max_epoch": 2, "num_iters_per_epoch": 3}, name="ddp.yaml")
    proc, exp = train_two_processes(root, config, train, valid, tokens, "exp_ddp")
    log = (exp / "train.log").read_text() if (exp / "train.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-5000:]
    assert "world_size=2" in log or "dist_world_size: 2" in (exp / "config.yaml").read_text()
    # 12 utterances, batch 4: 3 updates per epoch, 6 in all; the subnets start at update
    # round(0.2 x 6) = 1; Step 1 = 3 updates (k = 6, 4, 2).
    assert "only the supernet trains from update 0; the smaller subnets start at update 1" in log
    assert "DES: Step 1 ends after update 3" in log
    state = _final_state(exp)
    assert int(state["num_updates"]) == 6
    assert [int(m.sum()) for m in state["subnet_masks"]] == [2, 4, 6, 8]
    draws = [(exp / f"sandwich_draws.rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    assert draws[0] == draws[1] and [line.split()[0] for line in draws[0]] == ["3", "4", "5"]
    assert all(len(line.split()) == 4 and line.split()[1] == "2" and line.split()[3] == "8" for line in draws[0])
    sums = [(exp / f"parameter_checksums.rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    assert sums[0] == sums[1] and [line.split()[0] for line in sums[0]] == ["1", "2", "3", "4", "5", "6"]
    assert len({line.split()[2] for line in sums[0]}) == 6  # every update moved the parameters


@pytest.mark.parametrize("name, model_conf, expected", [
    ("zero_out", {"selector": "iterative_zero_out",
                  "selector_conf": {"steps_per_iter": [2], "zero_out_counts": [4]}},
     "Iterative-Zero-Out: iteration 1 ends after update 2"),
    ("aux_loss", {}, None),  # subnet sizes without a selector: the first units, a CTC head each
])
def test_zero_out_and_aux_loss_train_through_espnets_trainer(corpus, name, model_conf, expected):
    """The comparison's other supernet methods train, validate and checkpoint every size through
    ESPnet's trainer (the zero-out and Aux-Loss runs of the comparison's plan)."""
    root, train, valid, tokens = corpus
    config = write_config(root, model_conf=model_conf, extra={**TRAIN, "max_epoch": 2}, name=f"{name}.yaml")
    exp = train_tiny_model(root, config, train, valid, tokens, exp_name=f"exp_{name}")
    log = (exp / "train.log").read_text()
    assert "2epoch results" in log and "cer_ctc_4" in log
    if expected:
        assert expected in log
    state = _final_state(exp)
    assert int(state["num_updates"]) == 6
    masks = state["subnet_masks"]
    assert int(masks[0].sum()) == 4 and bool((masks[0] <= masks[1]).all())
    if name == "aux_loss":
        assert masks[0].tolist() == [True] * 4 + [False] * 4  # the first units: nothing is selected
    assert (exp / "valid.cer_ctc.best.pth").exists() or (exp / "valid.cer_ctc.ave.pth").exists()
