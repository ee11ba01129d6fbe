"""DMAO during training: events inside ESPnet's optimizer loop, checkpoints, resume, decoding."""
import copy
import shutil

import pytest
import torch
import yaml
from espnet2.asr.ctc import CTC

from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.model.dmao_state import STATE_KEY
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel
from tiny_asr import run_module, tiny_corpus, train_tiny_model, train_two_processes, write_config

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=16, attention_heads=4, linear_units=64, num_blocks=2, cnn_module_kernel=3,
           macaron_style=True, rel_pos_type="latest", dropout_rate=0.1, positional_dropout_rate=0.0,
           attention_dropout_rate=0.1, input_layer="conv2d")


def build(dmao=None, **encoder_conf):
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, **{**ENC, **encoder_conf})
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None, preencoder=None,
        encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 16), joint_network=None,
        dmao=dmao if dmao is not None else {"event_updates": [2], "rho": 0.3, "score_interval": 1})


def batch(seed=1):
    torch.manual_seed(seed)
    speech = torch.randn(3, 60, 20)
    text = torch.tensor([[2, 3, 4], [3, 3, -1], [4, -1, -1]])
    return speech, torch.tensor([60, 52, 41]), text, torch.tensor([3, 2, 1])


def train_steps(model, optimizer, updates, first_seed=1):
    model.train()
    for step in range(updates):
        loss = model(*batch(first_seed + step))[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def widths(model):
    return [dict(w) for w in model.encoder.block_widths]


def test_event_inside_the_optimizer_loop_keeps_adam_in_step():
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = widths(model)
    train_steps(model, optimizer, 2)
    assert int(model.num_updates) == 2 and model.dmao.controller.done_updates == [2]
    assert widths(model) != before
    # every trainable parameter is in the optimizer, nothing else is, and the moments fit
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert {id(p) for p in held} == {id(p) for p in model.parameters()}
    for p in held:
        state = optimizer.state[p]
        assert state["exp_avg"].shape == p.shape and state["exp_avg_sq"].shape == p.shape
    event = model.dmao.controller.events[0]
    # the parameter count stays within one group of the budget
    group_cost = max(16 * 16 + 16 + 16 * 16, 3 * (4 * 16 + 4) + 4 * 16 + 2 * 4 + 4 * 16)
    assert abs(event["param_change"]) <= group_cost
    train_steps(model, optimizer, 1, first_seed=5)  # one more step runs on the new shapes
    assert int(model.num_updates) == 3
    assert all(optimizer.state[p]["exp_avg"].shape == p.shape for p in held)


def test_copies_inherit_their_source_moments_or_start_afresh():
    results = {}
    for mode in ("gather", "reset"):
        model = build({"event_updates": [2], "rho": 0.3, "score_interval": 1, "optimizer_state": mode})
        old_params = {id(p) for p in model.parameters()}
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        train_steps(model, optimizer, 2)
        new_params = [p for p in model.parameters() if id(p) not in old_params]
        assert new_params  # the event replaced modules
        results[mode] = [bool(optimizer.state.get(p)) for p in new_params]
        results[mode + "_widths"] = widths(model)
    assert results["gather_widths"] == results["reset_widths"]  # same scores, same event
    assert all(results["gather"]) and not any(results["reset"])


def test_scheduler_keeps_its_step_across_an_event():
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    for seed in range(1, 4):
        train_steps(model, optimizer, 1, first_seed=seed)
        scheduler.step()
    assert scheduler.last_epoch == 3 and optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 / 4)
    assert scheduler.optimizer is optimizer


def test_checkpoint_rebuilds_a_fresh_model_and_its_optimizer():
    trained = build()
    optimizer = torch.optim.Adam(trained.parameters(), lr=1e-3)
    train_steps(trained, optimizer, 2)
    state = trained.state_dict()
    assert state["dmao._extra_state"]["block_widths"] == widths(trained)

    fresh = build()  # the original, uniform architecture (what --resume builds)
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    fresh.dmao.attach_optimizers([fresh_optimizer])
    fresh.load_state_dict(state)
    # (a copy, as from a file: load_state_dict keeps the tensors it is given)
    fresh_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert widths(fresh) == widths(trained) and fresh.dmao.controller.done_updates == [2]
    for (name, a), b in zip(trained.state_dict().items(), fresh.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    trained.eval(), fresh.eval()
    with torch.no_grad():
        speech, lengths = batch()[:2]
        torch.testing.assert_close(fresh.encode(speech, lengths)[0], trained.encode(speech, lengths)[0])
    # the same next update from both
    train_steps(trained, optimizer, 1, first_seed=7)
    train_steps(fresh, fresh_optimizer, 1, first_seed=7)
    for a, b in zip(trained.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b)


def test_optimizer_missing_rebuilt_parameters_is_refused():
    trained = build()
    train_steps(trained, torch.optim.Adam(trained.parameters(), lr=1e-3), 2)
    fresh = build()
    stale = torch.optim.Adam(fresh.parameters(), lr=1e-3)  # not attached: keeps the old tensors
    fresh.load_state_dict(trained.state_dict())
    with pytest.raises(RuntimeError, match="DMAO: the optimizer does not update"):
        train_steps(fresh, stale, 1)


@pytest.mark.parametrize("conf, message", [
    ({"event_updates": [5, 3]}, "event_updates must be increasing"),
    ({"event_updates": [1], "rho": 1.5}, "rho must be in"),
    ({"event_updates": [1], "optimizer_state": "keep"}, "optimizer_state must be one of"),
    ({"event_updates": [1], "method": "random"}, "method must be one of"),
    ({"event_updates": [1], "unknown": 1}, "unexpected keyword"),
    ({"event_updates": [1], "group_sizes": {"ffn": 24}}, r"block 0 'feed_forward_macaron': group_size=24 does not divide"),
])
def test_bad_dmao_options_name_the_option(conf, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build(conf)


def test_dmao_with_des_subnets_is_refused():
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, **ENC)
    with pytest.raises(ValueError, match="model_conf.dmao: .*single-size model"):
        ESPnetSupernetCTCModel(
            vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None,
            preencoder=None, encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 16),
            joint_network=None, subnet_sizes=[4, 8], dmao={"event_updates": [1]})


# ------------------------------------------------------------- through ESPnet's trainer
DMAO = {"subnet_sizes": [8], "dmao": {"event_updates": [4], "rho": 0.25, "score_interval": 2}}
DMAO_ENCODER = {"linear_units": 64}  # 2 FFN groups of d = 32
TRAIN = {"batch_size": 2, "max_epoch": 3, "optim_conf": {"lr": 0.01}, "scheduler": "warmuplr",
         "scheduler_conf": {"warmup_steps": 5}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("dmao"))


def _checkpoint(exp):
    return torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_espnet_training_with_an_event_resume_and_decoding(corpus):
    root, train, valid, tokens = corpus
    full = write_config(root, model_conf=DMAO, encoder_conf=DMAO_ENCODER, extra=TRAIN, name="dmao_full.yaml")
    exp_full = train_tiny_model(root, full, train, valid, tokens, exp_name="exp_dmao_full")
    log = (exp_full / "train.log").read_text()
    # 12 utterances / batch 2 = 6 updates per epoch: the event after update 4, in epoch 1
    assert "DMAO event at update 4" in log
    arch = yaml.safe_load((exp_full / "architecture.yaml").read_text())
    assert len(arch["events"]) == 1 and arch["events"][0]["update"] == 4
    assert arch["block_widths"] != arch["events"][0]["widths_before"]
    assert (exp_full / "architecture_event1.png").read_bytes()[:4] == b"\x89PNG"
    config = yaml.safe_load((exp_full / "config.yaml").read_text())
    assert config["encoder_conf"]["block_widths"] == arch["block_widths"]

    # interrupted after epoch 1 (after the event), resumed with ESPnet's --resume
    part = write_config(root, model_conf=DMAO, encoder_conf=DMAO_ENCODER, extra={**TRAIN, "max_epoch": 1}, name="dmao_part.yaml")
    exp_part = train_tiny_model(root, part, train, valid, tokens, exp_name="exp_dmao_part")
    assert _checkpoint(exp_part)["model"]["dmao._extra_state"]["block_widths"] == arch["block_widths"]
    shutil.copy(full, root / "dmao_part.yaml")
    exp_resumed = train_tiny_model(root, root / "dmao_part.yaml", train, valid, tokens, exp_name="exp_dmao_part")
    a, b = _checkpoint(exp_full), _checkpoint(exp_resumed)
    assert int(b["model"]["num_updates"]) == 18
    for name, value in a["model"].items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(b["model"][name], value, msg=name)
    assert b["schedulers"][0]["last_epoch"] == a["schedulers"][0]["last_epoch"] == 18
    resumed_config = yaml.safe_load((exp_resumed / "config.yaml").read_text())
    assert resumed_config["encoder_conf"]["block_widths"] == arch["block_widths"]

    # decoding reads config.yaml, builds the reallocated shapes and loads the checkpoint
    out = root / "decode_dmao"
    run_module("espnet_dynenc.bin.ctc_greedy_inference", [
        "--asr_train_config", f"{exp_full}/config.yaml", "--asr_model_file", f"{exp_full}/valid.cer_ctc.best.pth",
        "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--output_dir", str(out),
        "--flops_reference_seconds", "1"], cwd=root)
    assert len((out / "8" / "text").read_text().splitlines()) == 4


def test_checkpoint_states_average_after_the_event_and_refuse_a_mix():
    """ESPnet's average_nbest_models adds state-dict entries and divides: the DMAO entry comes
    first and refuses checkpoints from both sides of an event, naming them."""
    before, after = build(), build()
    optimizer = torch.optim.Adam(after.parameters(), lr=1e-3)
    train_steps(after, optimizer, 2)  # the event at update 2
    keys = list(after.state_dict())
    assert keys.index(STATE_KEY) < keys.index("encoder.embed.conv.0.weight")
    a, b = before.state_dict()[STATE_KEY], after.state_dict()[STATE_KEY]
    with pytest.raises(ValueError, match=r"both sides of a reallocation event \(events done at updates \[\] in one, "
                                         r"\[2\] in the other"):
        a + b
    train_steps(after, optimizer, 1, first_seed=5)
    later = after.state_dict()[STATE_KEY]
    assert (b + later) / 2 is b  # same architecture and events: averages to the first (best) epoch's state


@pytest.mark.slow
def test_averaging_more_epochs_than_follow_the_event_is_refused_before_training(corpus):
    root, train, valid, tokens = corpus
    dmao = {**DMAO["dmao"], "event_updates": [8]}  # 6 updates per epoch: epochs 2 and 3 end after it
    config = write_config(root, model_conf={**DMAO, "dmao": dmao}, encoder_conf=DMAO_ENCODER,
                          extra={**TRAIN, "keep_nbest_models": 3, "num_iters_per_epoch": 6}, name="dmao_avg.yaml")
    with pytest.raises(AssertionError, match="only 2 of the 3 epochs end after the last event .* at most 2"):
        train_tiny_model(root, config, train, valid, tokens, exp_name="exp_dmao_avg")


@pytest.mark.slow
def test_checkpoints_after_the_event_are_averaged_and_decoded(corpus):
    root, train, valid, tokens = corpus
    config = write_config(root, model_conf=DMAO, encoder_conf=DMAO_ENCODER,
                          extra={**TRAIN, "keep_nbest_models": 2, "num_iters_per_epoch": 6}, name="dmao_avg2.yaml")
    exp = train_tiny_model(root, config, train, valid, tokens, exp_name="exp_dmao_avg2")
    averaged = torch.load(exp / "valid.cer_ctc.ave_2best.pth", map_location="cpu", weights_only=False)
    assert [e["update"] for e in averaged[STATE_KEY]["events"]] == [4]
    out = root / "decode_dmao_avg2"
    run_module("espnet_dynenc.bin.ctc_greedy_inference", [
        "--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave_2best.pth",
        "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--output_dir", str(out),
        "--flops_reference_seconds", "1"], cwd=root)
    assert len((out / "8" / "text").read_text().splitlines()) == 4


@pytest.mark.slow
def test_two_processes_stay_identical_across_an_event(corpus):
    """Two gloo ranks through ESPnet's launcher: the event-made tensors' gradients are averaged
    by the model, so both ranks make the same event and keep the same parameters."""
    root, train, valid, tokens = corpus
    dmao = {**DMAO["dmao"], "event_updates": [2], "log_parameter_checksums": True}
    config = write_config(root, model_conf={**DMAO, "dmao": dmao}, encoder_conf=DMAO_ENCODER,
                          extra={**TRAIN, "batch_size": 4, "max_epoch": 2, "unused_parameters": True},
                          name="dmao_ddp.yaml")
    proc, exp = train_two_processes(root, config, train, valid, tokens, "exp_dmao_ddp")
    log = (exp / "train.log").read_text() if (exp / "train.log").exists() else ""
    assert proc.returncode == 0, proc.stderr[-3000:] + log[-5000:]
    assert "DMAO event at update 2" in log
    # 12 utterances in batches of 4 (split over the ranks): 3 updates per epoch, 6 in all;
    # after every update both ranks hold the same parameters, bit for bit
    sums = [(exp / f"dmao_checksums.rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    assert sums[0] == sums[1] and [line.split()[0] for line in sums[0]] == ["1", "2", "3", "4", "5", "6"]
    assert len({line.split()[1] for line in sums[0][1:]}) == 1  # the architecture changed once, at update 2
    arch = yaml.safe_load((exp / "architecture.yaml").read_text())
    assert arch["events"][0]["update"] == 2 and arch["block_widths"] != arch["events"][0]["widths_before"]


@pytest.mark.slow
def test_two_processes_without_unused_parameters_are_refused(corpus):
    root, train, valid, tokens = corpus
    config = write_config(root, model_conf=DMAO, encoder_conf=DMAO_ENCODER, extra={**TRAIN, "batch_size": 4},
                          name="dmao_ddp_refused.yaml")
    proc, exp = train_two_processes(root, config, train, valid, tokens, "exp_dmao_ddp_refused")
    log = (exp / "train.log").read_text() if (exp / "train.log").exists() else ""
    assert proc.returncode != 0 and "set unused_parameters: true" in proc.stderr + log
