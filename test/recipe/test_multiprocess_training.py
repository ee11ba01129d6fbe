"""asr.sh stage 11 with more than one process, and training that ends badly.

* two CPU training processes through ESPnet's launcher (``--train_hosts``, its ``--host``
  mode; an ``ssh`` on PATH that runs the command on this machine stands in for the remote
  login) finish with exit status 0 and are decoded and scored;
* a rank that fails during an epoch fails the stage: exit status non-zero, the failing
  rank's traceback in train.log and on the console, no ``.train.done``.

A training killed with SIGKILL mid-epoch is in test_mini_synth_recipe (it starts from the
finished mini recipe made there).
"""
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from recipe.conftest import DATA_OPTS, read_table, run_asr
from recipe.test_recipe_end_to_end import CONFIG

EXP = "exp/asr_train_tiny_raw_en_bpe20"
COMMON = [*DATA_OPTS, "--nj", "1", "--inference_nj", "1", "--ngpu", "0", "--nbpe", "20",
          "--max_wav_duration", "1.0", "--asr_config", "conf/train_tiny.yaml"]


def local_ssh(root: Path) -> dict:
    """An environment whose ``ssh HOST COMMAND...`` runs COMMAND here."""
    bin_dir = root / "fake_bin"
    bin_dir.mkdir(exist_ok=True)
    ssh = bin_dir / "ssh"
    ssh.write_text('#!/usr/bin/env bash\n# ssh HOST COMMAND...: run COMMAND on this machine.\nshift\nexec bash -c "$*"\n')
    ssh.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def write_config(recipe: Path, **changes) -> None:
    (recipe / "conf").mkdir(exist_ok=True)
    config = {**CONFIG, "max_epoch": 2, "model_conf": {**CONFIG["model_conf"], "selector": "simple_topk",
                                                       "selector_conf": {"updates_per_k_step": 1, "k_reduction": 2}},
              **changes}
    (recipe / "conf" / "train_tiny.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.slow
def test_two_training_processes_through_asr_sh(tiny_recipe):
    recipe = tiny_recipe.recipe
    write_config(recipe)
    proc = run_asr(recipe, *COMMON, "--train_hosts", "localhost,localhost", env=local_ssh(recipe), timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    exp = recipe / EXP
    assert (exp / ".train.done").is_file()
    assert yaml.safe_load((exp / "config.yaml").read_text())["dist_world_size"] == 2
    log = (exp / "train.log").read_text()
    assert "The training was finished at 2 epochs" in log
    assert "terminate called" not in log and "outlive the destroyed process group" not in log
    assert "Stage 11: epoch 1/2 started" in proc.stdout and "Stage 11: training finished after 2 epochs" in proc.stdout
    for size in ("4", "8"):
        assert len(read_table(exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave" / "test" / size / "text")) == 4


@pytest.mark.slow
def test_a_rank_that_fails_during_an_epoch_fails_the_stage(tiny_recipe):
    recipe = tiny_recipe.recipe
    write_config(recipe)
    proc = run_asr(recipe, *COMMON, "--stop_stage", "10")
    assert proc.returncode == 0, proc.stdout[-5000:]
    # a training utterance that was fine when the statistics were computed is now unreadable
    broken = recipe / sorted(read_table(recipe / "dump" / "raw" / "train" / "wav.scp").values())[3]
    broken.write_bytes(b"this is not a RIFF file")
    started = time.monotonic()
    proc = run_asr(recipe, *COMMON, "--stage", "11", "--train_hosts", "localhost,localhost",
                   env=local_ssh(recipe), timeout=600)
    assert proc.returncode != 0
    assert time.monotonic() - started < 300  # the other rank does not wait for a peer that is gone
    exp = recipe / EXP
    assert not (exp / ".train.done").exists()
    log = (exp / "train.log").read_text()
    assert "Traceback (most recent call last)" in log and broken.name in log
    assert "Stage 11: error in training: Traceback" in proc.stdout
    assert "Stage 11: training failed; see" in proc.stdout
