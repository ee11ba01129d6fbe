"""Averaging DES checkpoints with ESPnet's own ``average_nbest_models``: a bool buffer
averages to the union of the masks, so checkpoints with other masks or from both sides of
the Step-1/Step-2 switch are refused (before training, and when averaging)."""
import argparse

import pytest
import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.main_funcs.average_nbest_models import average_nbest_models
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model
from espnet2.train.reporter import Reporter

from espnet_dynenc.espnet_task import DynEncASRTask, check_des_training, epochs_ending_after
from espnet_dynenc.model.des_state import MaskState
from espnet_dynenc.model.dmao_state import CheckpointState
from espnet_dynenc.model.supernet_ctc import MASK_STATE_KEY
from espnet_dynenc.selection.relaxed_topk import nested_masks
from test_selection import ENC, TOKENS, _batch, _model

# 8 units; Step 1 = 1 update per k step x (8 - 4) / 2 = 2 updates: k = 6, 4, then the switch.
DES = dict(subnet_sizes=[4, 8], selector="simple_topk", selector_conf={"updates_per_k_step": 1, "k_reduction": 2})


def _des_model():
    return _model(**DES)


def _train(model, optimizer, updates):
    model.train()
    for _ in range(updates):
        optimizer.zero_grad()
        model(*_batch())[0].backward()
        optimizer.step()


def _checkpoints(tmp_path, states):
    """``{epoch}epoch.pth`` per state dict and a reporter whose valid cer_ctc ranks them in
    the given order (the first the best), as ESPnet's trainer leaves them."""
    reporter = Reporter()
    for epoch, state in enumerate(states, 1):
        torch.save(state, tmp_path / f"{epoch}epoch.pth")
        with reporter.observe("valid", epoch) as sub:
            sub.register({"cer_ctc": 0.1 * epoch})
            sub.next()
    return reporter


def _average(tmp_path, states):
    reporter = _checkpoints(tmp_path, states)
    average_nbest_models(tmp_path, reporter, [("valid", "cer_ctc", "min")], nbest=len(states))
    return tmp_path / f"valid.cer_ctc.ave_{len(states)}best.pth"


def _step1_and_step2_states():
    """(a state dict saved after update 1, in Step 1; one after update 3, in Step 2)."""
    model = _des_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    _train(model, optimizer, 1)
    step1 = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    _train(model, optimizer, 2)
    assert not model.in_step1
    step2 = model.state_dict()
    assert not torch.equal(step1["subnet_masks"], step2["subnet_masks"])  # the learned masks are not the first k
    return step1, step2


def test_espnet_averaging_turns_different_bool_masks_into_their_union(tmp_path):
    """(a) Without the guard entry ESPnet's average of the bool buffer is the union: size 4
    then runs more than 4 units."""
    step1, step2 = _step1_and_step2_states()
    union = step1["subnet_masks"] | step2["subnet_masks"]
    for state in (step1, step2):
        del state[MASK_STATE_KEY]  # as a checkpoint saved before the guard existed
    averaged = torch.load(_average(tmp_path, [step2, step1]), map_location="cpu", weights_only=False)
    loaded = _des_model()
    loaded.load_state_dict(averaged)
    assert torch.equal(loaded.subnet_masks, union)
    assert int(loaded.subnet_masks[0].sum()) > 4 == loaded.subnet_sizes[0]


def test_averaging_checkpoints_from_both_sides_of_the_switch_is_refused_naming_both(tmp_path):
    """(b) The guard entry refuses inside ESPnet's averaging, before anything is saved."""
    step1, step2 = _step1_and_step2_states()
    mask1 = step1[MASK_STATE_KEY]["masks"][0]
    mask2 = step2[MASK_STATE_KEY]["masks"][0]
    with pytest.raises(ValueError) as error:
        _average(tmp_path, [step2, step1])
    message = str(error.value)
    assert "one was saved at update 3, in Step 2 (after the switch at update 2)" in message
    assert "the other at update 1, in Step 1 (before the switch at update 2)" in message
    assert f"size 4: {mask2} in one, {mask1} in the other" in message
    assert "union" in message and "keep_nbest_models" in message
    assert not (tmp_path / "valid.cer_ctc.ave_2best.pth").exists()


def test_any_two_different_masks_or_sides_are_refused():
    def entry(masks, updates=9, switch=None):
        return MaskState(sizes=[3, 8], masks=masks, updates=updates, switch_update=switch)

    fixed = ["1010 0010", "1111 1111"]
    with pytest.raises(ValueError, match=r"size 3: 1010 0010 in one, 0101 0001 in the other"):
        entry(fixed) + entry(["0101 0001", "1111 1111"])
    # equal masks, but one checkpoint from Step 1: its weights were not trained under them
    with pytest.raises(ValueError, match=r"update 2, in Step 1 .* subnet_masks are equal"):
        entry(fixed, updates=2, switch=4) + entry(fixed, updates=6, switch=4)
    with pytest.raises(ValueError, match="the other has no record of its subnet_masks"):
        entry(fixed) + {"masks": fixed}
    same = entry(fixed, updates=6)
    assert (same + entry(fixed, updates=9)) / 2 is same


def test_checkpoints_with_equal_masks_average_and_keep_them_exactly(tmp_path):
    """(c) Two Step-2 checkpoints: ESPnet averages the weights, the masks load back unchanged."""
    model = _des_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    _train(model, optimizer, 3)
    first = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    _train(model, optimizer, 1)
    second = model.state_dict()
    averaged = torch.load(_average(tmp_path, [second, first]), map_location="cpu", weights_only=False)
    assert averaged[MASK_STATE_KEY]["updates"] == 4  # the best epoch's entry
    loaded = _des_model()
    loaded.load_state_dict(averaged)
    assert torch.equal(loaded.subnet_masks, model.subnet_masks)
    assert torch.equal(loaded.subnet_masks, nested_masks(model.selector.ranking(), [4, 8]))
    weight = "encoder.encoders.0.feed_forward.w_1.weight"
    torch.testing.assert_close(loaded.state_dict()[weight], (first[weight] + second[weight]) / 2)


def _args(**overrides):
    args = dict(optim="sgd", optim_conf={"lr": 0.1}, sharded_ddp=False, exclude_weight_decay=False,
                keep_nbest_models=[10], num_iters_per_epoch=600, accum_grad=1, max_epoch=7, output_dir=None)
    return argparse.Namespace(**{**args, **overrides})


def test_epochs_ending_after_an_update():
    assert epochs_ending_after(4, 3, 3) == 2  # epoch 1 ends after update 3, before update 4
    assert epochs_ending_after(3, 3, 3) == 3  # epoch 1's checkpoint is saved with update 3 done
    assert epochs_ending_after(30, 3, 3) == 0
    assert epochs_ending_after(1680, 600, 7) == 5


def test_too_few_epochs_after_the_switch_are_refused_before_training():
    """(d) mini_synth's DES schedule: the switch after update 1680, 600 updates per epoch,
    7 epochs: epochs 3..7 end after it."""
    with pytest.raises(ValueError) as error:
        check_des_training(_args(keep_nbest_models=[1, 10]), 1680)
    message = str(error.value)
    assert "keep_nbest_models [1, 10] would average 10 checkpoints" in message
    assert "only 5 of the 7 epochs end after the switch to Step 2 (after update 1680" in message
    assert "600 updates per epoch" in message
    assert "keep_nbest_models to at most 5, or max_epoch to at least 12" in message
    check_des_training(_args(keep_nbest_models=[3]), 1680)
    check_des_training(_args(keep_nbest_models=5), 1680)
    check_des_training(_args(keep_nbest_models=[10], max_epoch=12), 1680)
    check_des_training(_args(keep_nbest_models=[1]), 10 ** 6)  # no averaging
    # ESPnet steps once every accum_grad iterations: 300 updates per epoch, epochs 6 and 7
    with pytest.raises(ValueError, match="only 2 of the 7 epochs .* 300 updates per epoch"):
        check_des_training(_args(keep_nbest_models=[3], accum_grad=2), 1680)


def test_the_task_checks_a_selector_model_when_it_builds_the_optimizer():
    model = _des_model()  # the switch after update 2
    with pytest.raises(ValueError, match=r"only 2 of the 3 epochs end after the switch to Step 2 \(after update 2"):
        DynEncASRTask.build_optimizers(_args(keep_nbest_models=[3], num_iters_per_epoch=1, max_epoch=3), model)
    assert len(DynEncASRTask.build_optimizers(_args(keep_nbest_models=[2], num_iters_per_epoch=1, max_epoch=3),
                                              model)) == 1
    fixed = _model(subnet_sizes=[4, 8])  # fixed masks: nothing to check
    DynEncASRTask.build_optimizers(_args(keep_nbest_models=[3], num_iters_per_epoch=1, max_epoch=3), fixed)


def test_an_older_state_dict_without_the_entry_loads_strictly():
    """(e) Checkpoints saved before the entry existed still load (``--resume`` is strict)."""
    model = _des_model()
    _train(model, torch.optim.SGD(model.parameters(), lr=0.5), 3)
    state = model.state_dict()
    assert isinstance(state[MASK_STATE_KEY], MaskState)
    del state[MASK_STATE_KEY]
    fresh = _des_model()
    result = fresh.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(fresh.subnet_masks, model.subnet_masks)
    assert fresh.state_dict()[MASK_STATE_KEY]["masks"] == model.state_dict()[MASK_STATE_KEY]["masks"]


def _stock_ctc_state():
    torch.manual_seed(3)
    config = {k: v for k, v in ENC.items()}
    stock = ESPnetASRModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None, preencoder=None,
        encoder=ConformerEncoder(20, **config), postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 16),
        joint_network=None, ctc_weight=1.0)
    return stock.state_dict()


def test_a_stock_espnet_ctc_checkpoint_loads_as_before(tmp_path):
    stock = _stock_ctc_state()
    model = _model(subnet_sizes=[4, 8])
    result = model.load_state_dict(stock, strict=False)  # what ESPnet's build_model_from_file does
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == {"subnet_masks", "num_updates", "subnet_ctcs.4.ctc_lo.weight",
                                        "subnet_ctcs.4.ctc_lo.bias"}
    torch.save(stock, tmp_path / "stock.pth")
    model = _des_model()
    load_pretrained_model(str(tmp_path / "stock.pth"), model, ignore_init_mismatch=False)  # --init_param
    name = "encoder.encoders.1.conv_module.pointwise_conv1.weight"
    assert torch.equal(model.state_dict()[name], stock[name])


def test_the_switch_writes_the_masks_of_a_model_moved_to_another_device():
    """ESPnet moves the model (``model.to(device)``) after building it, which gives every
    buffer a new tensor: the switch must freeze the masks into that one, which checkpoints,
    validation and decoding read."""
    model = _des_model()
    model._apply(lambda t: t.clone())  # what a move to a GPU does to the buffers
    _train(model, torch.optim.SGD(model.parameters(), lr=0.5), 3)
    learned = nested_masks(model.selector.ranking(), [4, 8])
    assert torch.equal(model.subnet_masks, learned)
    assert model.des.masks is model.subnet_masks
    assert model.mask_for(4) == tuple(learned[0].tolist())


def test_a_checkpoint_with_the_mask_entry_loads_with_torchs_default_weights_only(tmp_path):
    """torch >= 2.6 loads with weights_only=True by default: the entries must be allowed."""
    model = _des_model()
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    state = torch.load(path, map_location="cpu")  # weights_only=True, torch's default
    assert isinstance(state[MASK_STATE_KEY], MaskState) and state[MASK_STATE_KEY] == model.state_dict()[MASK_STATE_KEY]
    entry = CheckpointState(block_widths=[[8, 2, 4, 8]], events=[{"update": 3}])
    torch.save({"dmao._extra_state": entry}, tmp_path / "dmao.pth")
    assert torch.load(tmp_path / "dmao.pth")["dmao._extra_state"] == entry
