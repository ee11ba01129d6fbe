"""Each n-best average from the epochs themselves (espnet_dynenc.checkpoint_averaging and
its CLI average_checkpoints), where ESPnet's average_nbest_models, given two criteria that
share epochs, averages an average."""
import argparse
import logging
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.main_funcs.average_nbest_models import average_nbest_models
from espnet2.train.reporter import Reporter
from espnet2.train.trainer import Trainer

from espnet_dynenc.bin import average_checkpoints
from espnet_dynenc.checkpoint_averaging import OTHER_MASKS, REMOVED, AveragingTrainer, average_each_criterion
from espnet_dynenc.espnet_task import DynEncASRTask
from espnet_dynenc.model.checkpoint_entry import CheckpointMixError
from espnet_dynenc.model.des_state import MaskState

CRITERIA = [["valid", "a", "min"], ["valid", "b", "min"]]


def _experiment(folder: Path) -> Reporter:
    """Epochs 1-3 whose weight w is the epoch's number; criterion a ranks 3, 2, 1 and b 2, 3, 1;
    ESPnet's averages of the 2 best epochs of both criteria made in one call, as its trainer does."""
    folder.mkdir()
    for epoch in (1, 2, 3):
        torch.save({"w": torch.tensor([float(epoch)]), "steps": torch.tensor(epoch)}, folder / f"{epoch}epoch.pth")
    reporter = Reporter()
    reporter.load_state_dict({"epoch": 3, "stats": {
        1: {"valid": {"a": 0.9, "b": 0.9}}, 2: {"valid": {"a": 0.5, "b": 0.1}}, 3: {"valid": {"a": 0.1, "b": 0.5}}}})
    torch.save({"reporter": reporter.state_dict()}, folder / "checkpoint.pth")
    (folder / "config.yaml").write_text(yaml.safe_dump({"best_model_criterion": CRITERIA, "keep_nbest_models": 2}))
    average_nbest_models(output_dir=folder, reporter=reporter, best_model_criterion=CRITERIA, nbest=2)
    return reporter


def _w(path: Path) -> float:
    return float(torch.load(path, weights_only=False)["w"])


def test_each_criterion_is_the_average_of_its_own_best_epochs(tmp_path):
    exp = tmp_path / "exp"
    _experiment(exp)
    # ESPnet alone: a's average (epochs 3 and 2) is right, b's (2 and 3) averages epoch 2 with a's average
    assert _w(exp / "valid.a.ave_2best.pth") == 2.5
    assert _w(exp / "valid.b.ave_2best.pth") == 2.25
    made = average_each_criterion(exp, CRITERIA, 2)
    assert [(m.file, m.epochs, m.change) for m in made] == [
        ("valid.a.ave_2best.pth", (3, 2), 0.0), ("valid.b.ave_2best.pth", (2, 3), 0.25)]
    # ESPnet sums integer entries: its b summed a's sum (5) with epoch 3's steps; counted as another entry
    assert [m.others for m in made] == [0, 1] and [m.changed for m in made] == [False, True]
    assert _w(exp / "valid.a.ave_2best.pth") == 2.5 and _w(exp / "valid.b.ave_2best.pth") == 2.5
    assert int(torch.load(exp / "valid.b.ave_2best.pth", weights_only=False)["steps"]) == 5  # ints summed, as ESPnet
    assert (exp / "valid.b.ave.pth").resolve() == (exp / "valid.b.ave_2best.pth").resolve()
    assert not list(exp.glob(".averaging.*"))  # the scratch folder is gone
    assert [m.changed for m in average_each_criterion(exp, CRITERIA, 2)] == [False, False]  # idempotent


def test_check_only_says_what_would_change_and_writes_nothing(tmp_path):
    exp = tmp_path / "exp"
    _experiment(exp)
    made = average_each_criterion(exp, CRITERIA, 2, check_only=True)
    assert [m.change for m in made] == [0.0, 0.25]
    assert _w(exp / "valid.b.ave_2best.pth") == 2.25 and not list(exp.glob(".averaging.*"))


def test_nothing_is_done_with_one_criterion_and_a_missing_file_is_named(tmp_path):
    exp = tmp_path / "exp"
    _experiment(exp)
    assert average_each_criterion(exp, CRITERIA[:1], 2) == []
    (exp / "2epoch.pth").unlink()
    with pytest.raises(FileNotFoundError, match=r"2epoch.pth: no such file, needed for valid.a's 2 best epochs \[3, 2\]"):
        average_each_criterion(exp, CRITERIA, 2)
    assert _w(exp / "valid.b.ave_2best.pth") == 2.25  # nothing written
    (exp / "checkpoint.pth").unlink()
    with pytest.raises(FileNotFoundError, match="checkpoint.pth: no such file"):
        average_each_criterion(exp, CRITERIA, 2)


def test_the_cli_repairs_an_experiment_from_its_config(tmp_path, capsys):
    exp = tmp_path / "exp"
    _experiment(exp)
    assert average_checkpoints.main(["--exp_dir", str(exp), "--check_only"]) == 0
    out = capsys.readouterr().out
    assert "valid.b.ave_2best.pth (epochs 2 3): changed, largest difference 0.25 (and 1 other entries)" in out
    assert "2 averages made again, 1 would change" in out and _w(exp / "valid.b.ave_2best.pth") == 2.25
    assert average_checkpoints.main(["--exp_dir", str(exp)]) == 0
    assert "valid.a.ave_2best.pth (epochs 3 2): unchanged" in capsys.readouterr().out
    assert _w(exp / "valid.b.ave_2best.pth") == 2.5

    (exp / "config.yaml").write_text(yaml.safe_dump({"best_model_criterion": "valid.a", "keep_nbest_models": 2}))
    assert average_checkpoints.main(["--exp_dir", str(exp)]) == 2
    assert "config.yaml: best_model_criterion is 'valid.a', expected a list" in capsys.readouterr().err
    assert average_checkpoints.main(["--exp_dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such experiment dir" in capsys.readouterr().err


def test_the_task_trains_with_the_averaging_trainer():
    assert DynEncASRTask.trainer is AveragingTrainer


def _mask_state(step: int) -> MaskState:
    """The record of a DES checkpoint: Step 1 (before the switch at update 10) or Step 2."""
    masks = ["1100", "1111"] if step == 1 else ["0101", "1111"]
    return MaskState({"sizes": [2, 4], "masks": masks, "updates": 5 if step == 1 else 20, "switch_update": 10})


def _des_experiment(folder: Path, remove: tuple = (2,)) -> None:
    """Epoch 1 from Step 1, epochs 2-4 from Step 2 (weight w = the epoch's number); criterion
    a ranks 1, 3, 2, 4 (the Step-1 epoch best), b ranks 3, 4, 1, 2; 2 best epochs each. The
    trainer kept the files of every criterion's 2 best (1, 3, 4) and removed ``remove``."""
    folder.mkdir()
    for epoch in (1, 2, 3, 4):
        if epoch not in remove:
            torch.save({"w": torch.tensor([float(epoch)]), "_extra_state": _mask_state(1 if epoch == 1 else 2)},
                       folder / f"{epoch}epoch.pth")
    reporter = Reporter()
    reporter.load_state_dict({"epoch": 4, "stats": {
        1: {"valid": {"a": 0.1, "b": 0.3}}, 2: {"valid": {"a": 0.3, "b": 0.4}},
        3: {"valid": {"a": 0.2, "b": 0.1}}, 4: {"valid": {"a": 0.4, "b": 0.2}}}})
    last = {"w": torch.tensor([4.0]), "_extra_state": _mask_state(2)}
    torch.save({"reporter": reporter.state_dict(), "model": last}, folder / "checkpoint.pth")
    (folder / "config.yaml").write_text(yaml.safe_dump({"best_model_criterion": CRITERIA, "keep_nbest_models": 2}))


def test_a_des_average_leaves_out_the_epochs_of_other_masks_and_the_files_removed(tmp_path):
    exp = tmp_path / "exp"
    _des_experiment(exp)
    reporter = Reporter()
    reporter.load_state_dict(torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"])
    with pytest.raises(CheckpointMixError, match="in Step 1 .* in Step 2"):  # ESPnet's own averaging refuses
        average_nbest_models(output_dir=exp, reporter=reporter, best_model_criterion=CRITERIA, nbest=2)
    made = average_each_criterion(exp, CRITERIA, 2)
    # a: epoch 1 (Step 1) left out, epoch 2 (removed by the trainer) passed over: 3 and 4
    assert [(m.file, m.epochs, m.left_out) for m in made] == [
        ("valid.a.ave_2best.pth", (3, 4), ((1, OTHER_MASKS), (2, REMOVED))),
        ("valid.b.ave_2best.pth", (3, 4), ())]
    assert "left out: epoch 1 (other masks or architecture than the last epoch), epoch 2 (its file was removed" \
        in made[0].describe()
    for name in ("valid.a.ave_2best.pth", "valid.b.ave_2best.pth", "valid.a.ave.pth", "valid.b.ave.pth"):
        state = torch.load(exp / name, weights_only=False)
        assert float(state["w"]) == 3.5 and state["_extra_state"]["masks"] == ["0101", "1111"]
    assert not list(exp.glob(".averaging.*"))
    # one criterion is averaged too (ESPnet's averaging of it refused as well), by the CLI as by the trainer
    (exp / "config.yaml").write_text(yaml.safe_dump({"best_model_criterion": CRITERIA[:1], "keep_nbest_models": 2}))
    (exp / "valid.a.ave_2best.pth").unlink()
    assert average_checkpoints.main(["--exp_dir", str(exp)]) == 0
    assert _w(exp / "valid.a.ave_2best.pth") == 3.5


def test_the_trainer_averages_after_espnet_refuses_a_mix(tmp_path, monkeypatch, caplog):
    exp = tmp_path / "exp"
    _des_experiment(exp)

    def espnet_run(cls, **kwargs):  # ESPnet's run ends with its averaging, which refuses the mix
        reporter = Reporter()
        reporter.load_state_dict(torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"])
        average_nbest_models(output_dir=exp, reporter=reporter, best_model_criterion=CRITERIA, nbest=2)

    monkeypatch.setattr(Trainer, "run", classmethod(espnet_run))
    options = argparse.Namespace(output_dir=str(exp), best_model_criterion=CRITERIA, keep_nbest_models=2,
                                 nbest_averaging_interval=0)
    distributed = argparse.Namespace(distributed=False, dist_rank=0)
    with caplog.at_level(logging.INFO):
        AveragingTrainer.run(trainer_options=options, distributed_option=distributed)
    assert "ESPnet's checkpoint averaging refused the epochs it ranked best" in caplog.text
    assert "valid.a.ave_2best.pth (epochs 3 4): new; left out: epoch 1" in caplog.text
    assert _w(exp / "valid.a.ave.pth") == 3.5
    # an averaging during the training (nbest_averaging_interval) is not the end of the run: refused
    options.nbest_averaging_interval = 2
    with pytest.raises(CheckpointMixError):
        AveragingTrainer.run(trainer_options=options, distributed_option=distributed)
