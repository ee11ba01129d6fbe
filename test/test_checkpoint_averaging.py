"""Each n-best average from the epochs themselves (espnet_dynenc.checkpoint_averaging), where
ESPnet's average_nbest_models, given two criteria that share epochs, averages an average."""
from pathlib import Path

import torch
from espnet2.main_funcs.average_nbest_models import average_nbest_models
from espnet2.train.reporter import Reporter

from espnet_dynenc.checkpoint_averaging import AveragingTrainer, average_each_criterion
from espnet_dynenc.espnet_task import DynEncASRTask

CRITERIA = [["valid", "a", "min"], ["valid", "b", "min"]]


def _experiment(folder: Path) -> Reporter:
    """Epochs 1-3 whose weight w is the epoch's number; criterion a ranks 3, 2, 1 and b 2, 3, 1."""
    folder.mkdir()
    for epoch in (1, 2, 3):
        torch.save({"w": torch.tensor([float(epoch)]), "steps": torch.tensor(epoch)}, folder / f"{epoch}epoch.pth")
    reporter = Reporter()
    reporter.load_state_dict({"epoch": 3, "stats": {
        1: {"valid": {"a": 0.9, "b": 0.9}}, 2: {"valid": {"a": 0.5, "b": 0.1}}, 3: {"valid": {"a": 0.1, "b": 0.5}}}})
    torch.save({"reporter": reporter.state_dict()}, folder / "checkpoint.pth")
    return reporter


def _w(path: Path) -> float:
    return float(torch.load(path, weights_only=False)["w"])


def test_each_criterion_is_the_average_of_its_own_best_epochs(tmp_path):
    exp = tmp_path / "exp"
    reporter = _experiment(exp)
    # ESPnet alone: a's average (epochs 3 and 2) is right, b's (2 and 3) averages epoch 2 with a's average
    average_nbest_models(output_dir=exp, reporter=reporter, best_model_criterion=CRITERIA, nbest=2)
    assert _w(exp / "valid.a.ave_2best.pth") == 2.5
    assert _w(exp / "valid.b.ave_2best.pth") == 2.25
    assert average_each_criterion(exp, CRITERIA, 2) is True
    assert _w(exp / "valid.a.ave_2best.pth") == 2.5 and _w(exp / "valid.b.ave_2best.pth") == 2.5
    assert int(torch.load(exp / "valid.b.ave_2best.pth", weights_only=False)["steps"]) == 5  # ints summed, as ESPnet
    assert (exp / "valid.b.ave.pth").resolve() == (exp / "valid.b.ave_2best.pth").resolve()


def test_nothing_is_done_with_one_criterion_or_without_a_checkpoint(tmp_path):
    exp = tmp_path / "exp"
    _experiment(exp)
    assert average_each_criterion(exp, CRITERIA[:1], 2) is False
    assert not (exp / "valid.a.ave_2best.pth").exists()
    (exp / "checkpoint.pth").unlink()
    assert average_each_criterion(exp, CRITERIA, 2) is False


def test_the_task_trains_with_the_averaging_trainer():
    assert DynEncASRTask.trainer is AveragingTrainer
