"""The pruning plan type: one layout for pruning_plan.yaml, its checks, and the driver's CLI."""
import subprocess
import sys

import pytest
import yaml

from espnet_dynenc.pruning.plan import PruningPlan
from tiny_asr import REPO


def a_plan() -> PruningPlan:
    return PruningPlan(subnet=24, num_blocks=6, skip_blocks={"top": {4: (4, 5), 2: (2, 3, 4, 5)}, "greedy": {4: (0, 5)}},
                       asr_train_config="exp/config.yaml", asr_model_file="exp/m.pth", dev_utterances=10,
                       greedy_metric="ctc_loss", full_model={"ctc_loss": 1.5, "cer": 0.2},
                       greedy_removal_order=[5, 0])


def test_save_writes_the_layout_readers_expect_and_load_gives_the_plan_back(tmp_path):
    path = tmp_path / "pruning_plan.yaml"
    a_plan().save(path)
    document = yaml.safe_load(path.read_text())
    assert list(document) == ["asr_train_config", "asr_model_file", "subnet", "num_blocks", "dev_utterances",
                              "greedy_metric", "full_model", "skip_blocks", "greedy_removal_order"]
    assert document["skip_blocks"]["top"] == {4: [4, 5], 2: [2, 3, 4, 5]}
    loaded = PruningPlan.load(path)
    assert loaded == a_plan() and loaded.source == str(path)
    assert list(loaded.removal_sets())[:2] == [("top", 4, (4, 5)), ("top", 2, (2, 3, 4, 5))]


def test_a_removal_set_that_is_not_planned_names_the_option(tmp_path):
    plan = a_plan()
    assert plan.removed("greedy", 4) == (0, 5)
    with pytest.raises(ValueError, match=r"--depth: 3 is not planned for strategy 'top' \(it has depths \[4, 2\]\)"):
        plan.removed("top", 3)
    with pytest.raises(ValueError, match=r"--strategy: 'svcca' is not planned"):
        plan.removed("svcca", 4)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.pruning_plan", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_prints_a_field_and_names_a_bad_plan(tmp_path):
    path = tmp_path / "pruning_plan.yaml"
    a_plan().save(path)
    assert run_cli("--plan", str(path), "--field", "subnet").stdout == "24\n"
    assert run_cli("--plan", str(path), "--field", "greedy_metric").stdout == "ctc_loss\n"
    missing = run_cli("--plan", str(tmp_path / "none.yaml"), "--field", "subnet")
    assert missing.returncode == 2 and "no such file" in missing.stderr and "none.yaml" in missing.stderr
    path.write_text(yaml.safe_dump({"subnet": 24}))
    malformed = run_cli("--plan", str(path), "--field", "subnet")
    assert malformed.returncode == 2 and "no 'num_blocks'" in malformed.stderr
