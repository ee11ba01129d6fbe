"""The embedded recipe, egs2/mini_synth/asr1/run.sh, end to end with a tiny corpus and model.

The recipe directory is mirrored into a temporary directory (its run.sh, cmd.sh and
local/data.sh as they are; asr.sh, path.sh and utils linked to the template) so the tests
leave the repository untouched; only the corpus size and the training config are small.
run.sh runs end to end once per test worker (the ``finished_mini_recipe`` fixture); the tests
of resuming, of a training killed mid-epoch and of the language-model stages start from
copies of it.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from espnet_dynenc.recipe.results_table import read_sum_avg
from recipe.conftest import REPO, TEMPLATE, read_table

RECIPE = REPO / "egs2" / "mini_synth" / "asr1"
CORPUS = "--num_train 40 --num_dev 8 --num_test 8 --num_dev_voices 2 --num_test_voices 2"
CONFIG = {
    "encoder": "dynamic_conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 2,
                     "macaron_style": True, "rel_pos_type": "latest", "cnn_module_kernel": 7},
    "frontend_conf": {"n_fft": 400, "hop_length": 160, "n_mels": 40},
    "model": "supernet_ctc",
    "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8], "selector": "simple_topk",
                   "selector_conf": {"updates_per_k_step": 2, "k_reduction": 2}},
    "batch_type": "unsorted",
    "batch_size": 8,
    "max_epoch": 2,
    "optim": "adam",
    "optim_conf": {"lr": 0.002},
    "best_model_criterion": [["valid", "cer_ctc", "min"]],
    "keep_nbest_models": 2,
    "num_workers": 0,
    "seed": 0,
}
EXP = "exp/asr_tiny_raw_en_bpe30"


def mirror_recipe(root: Path) -> Path:
    recipe = root / "egs2" / "mini_synth" / "asr1"
    (recipe / "conf").mkdir(parents=True)
    for name in ("asr.sh", "path.sh", "utils"):
        (recipe / name).symlink_to(TEMPLATE / name)
    for name in ("run.sh", "cmd.sh"):
        shutil.copy(RECIPE / name, recipe / name)
    shutil.copytree(RECIPE / "local", recipe / "local")
    (recipe / "conf" / "tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    return recipe


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", "--local_data_opts", CORPUS, "--asr_config", "conf/tiny.yaml",
                           "--nbpe", "30", "--subnets", "4 8", *args], cwd=recipe, env=dict(os.environ),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)


@dataclass
class FinishedRecipe:
    """The mirrored recipe after one real ``./run.sh`` (stages 1-14) and that run's console output."""
    recipe: Path
    proc: subprocess.CompletedProcess

    def copy(self, root: Path) -> Path:
        """A copy of the finished recipe under ``root``, for a test to change (links stay links)."""
        target = root / "egs2" / "mini_synth" / "asr1"
        shutil.copytree(self.recipe, target, symlinks=True)
        return target


@pytest.fixture(scope="session")
def finished_mini_recipe(tmp_path_factory) -> FinishedRecipe:
    """run.sh end to end once per test session (data, BPE, statistics, training, decoding,
    scoring, packing); the tests of the recipe's later stages start from copies of it."""
    recipe = mirror_recipe(tmp_path_factory.mktemp("mini_synth"))
    proc = run_recipe(recipe)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return FinishedRecipe(recipe, proc)


@pytest.mark.slow
def test_run_sh_end_to_end_resumes_and_continues_training(finished_mini_recipe, tmp_path):
    proc = finished_mini_recipe.proc
    recipe = finished_mini_recipe.copy(tmp_path)

    # stage 1: the synthetic corpus, held-out voices
    counts = {"train": 40, "dev": 8, "test": 8}
    for name, count in counts.items():
        for file_name in ("wav.scp", "text", "utt2spk"):
            assert len(read_table(recipe / "data" / name / file_name)) == count, (name, file_name)
    speakers = {name: set(read_table(recipe / "data" / name / "utt2spk").values()) for name in counts}
    assert not speakers["test"] & speakers["train"] and not speakers["dev"] & speakers["train"]
    # stages 3-5: formatted audio and the BPE model
    for name in ("org/train", "org/dev", "test"):
        assert (recipe / "dump" / "raw" / name / ".done").is_file(), name
    assert (recipe / "data" / "en_token_list" / "bpe_bpe30" / "bpe.model").is_file()
    # stages 10-11: statistics, training with the DES schedule
    assert (recipe / "exp" / "asr_stats_raw_en_bpe30" / "train" / "feats_stats.npz").is_file()
    exp = recipe / EXP
    assert (exp / "valid.cer_ctc.ave.pth").exists() and (exp / "subnets.yaml").is_file()
    assert "DES: Step 1 ends after update 4" in (exp / "train.log").read_text()
    # stages 12-13: every size decoded and scored, one RESULTS.md row per size, printed
    decode = exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave" / "test"
    for size in ("4", "8"):
        assert len(read_table(decode / size / "text")) == 8
        assert (decode / size / "score_wer" / "result.txt").is_file()
    results = (exp / "RESULTS.md").read_text()
    rows = [line for line in results.splitlines() if line.startswith(("| 4 |", "| 8 |"))]
    # size, parameters, FLOPs, WER, CER, RTF, checkpoint (a config with one criterion: the full size's)
    assert len(rows) == 2 and all(len(row.split("|")) == 9 for row in rows) and "n/a" not in results
    assert all(row.endswith("| `valid.cer_ctc.ave.pth` |") for row in rows)
    assert all(row in proc.stdout for row in rows)
    # stage 14 (run.sh packs by default): every size exported and zipped by ESPnet's packer
    for size in ("4", "8"):
        assert yaml.safe_load((exp / "packed" / size / "export.yaml").read_text())["subnet"] == int(size)
        assert (exp / "packed" / f"asr_tiny_raw_en_bpe30_valid.cer_ctc.ave_{size}.zip").is_file()
    assert "Stage 14: exported sizes in" in proc.stdout

    # the comparison reads a real experiment: its summary has the sizes, scores and cost RESULTS.md has
    (recipe / "manifest.tsv").write_text(f"des_simple_topk supernet 0 {EXP}\n")
    summarise = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.compare_results", "--manifest", "manifest.tsv",
                                "--runs_dir", "runs", "--summarise_only", "--run_seconds", "7"], cwd=recipe,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert summarise.returncode == 0, summarise.stdout
    summary = json.loads((recipe / "runs" / "des_simple_topk_seed0.json").read_text())
    assert sorted(summary["sizes"]) == ["4", "8"] and summary["test_sets"] == ["test"]
    for size in ("4", "8"):
        wer = read_sum_avg(decode / size / "score_wer" / "result.txt").errors
        assert summary["sizes"][size]["wer"]["test"] == wer
        assert len(summary["sizes"][size]["errors"]["test"]) == len(summary["references"]["test"]["ids"]) == 8
    assert summary["cost"]["updates"] > 0 and summary["cost"]["seconds"] > 0 and summary["run_seconds"] == 7

    # after an earlier data preparation: ./run.sh --stage 10 finds everything done
    again = run_recipe(recipe, "--stage", "10")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "training already done" in again.stdout and "Stage 1:" not in again.stdout
    assert "packing of size 8 already done" in again.stdout

    # a training stopped after epoch 2 of 3 (no .train.done yet) continues at epoch 3
    (recipe / "conf" / "tiny.yaml").write_text(yaml.safe_dump({**CONFIG, "max_epoch": 3}))
    (exp / ".train.done").unlink()
    more = run_recipe(recipe, "--stage", "11", "--stop_stage", "11")
    assert more.returncode == 0, more.stdout[-3000:]
    log = (exp / "train.log").read_text()
    assert "The training was resumed using" in log
    assert "3epoch results" in log and "1epoch results" not in log


@pytest.mark.slow
def test_training_killed_mid_epoch_continues_on_the_next_run(finished_mini_recipe, tmp_path):
    recipe = finished_mini_recipe.copy(tmp_path)  # stages 1-10 done; the training is made again here
    shutil.rmtree(recipe / EXP)
    (recipe / "conf" / "tiny.yaml").write_text(yaml.safe_dump({**CONFIG, "max_epoch": 3}))
    log = recipe / EXP / "train.log"
    run = subprocess.Popen(["./run.sh", "--local_data_opts", CORPUS, "--asr_config", "conf/tiny.yaml",
                            "--nbpe", "30", "--subnets", "4 8", "--stage", "11"], cwd=recipe,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while "2/3epoch started" not in (log.read_text() if log.exists() else ""):
        assert run.poll() is None and time.monotonic() < deadline, "training ended before epoch 2"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # the recipe, the launcher and the trainer, mid-epoch
    run.wait()
    exp = recipe / EXP
    assert not (exp / ".train.done").exists() and (exp / "checkpoint.pth").is_file()
    assert "2epoch results" not in log.read_text()

    again = run_recipe(recipe)
    assert again.returncode == 0, again.stdout[-5000:]
    resumed = log.read_text()
    assert "The training was resumed using" in resumed
    assert "2epoch results" in resumed and "3epoch results" in resumed and "1epoch results" not in resumed
    assert "Stage 11: training resumed from" in again.stdout and (exp / ".train.done").is_file()
    assert (exp / "RESULTS.md").is_file()


# ---------------------------------------------------------------- with a language model
LM_CONFIG = {
    "lm": "seq_rnn",
    "lm_conf": {"unit": 32, "nlayers": 1},
    "optim": "adam",
    "optim_conf": {"lr": 0.01},
    "batch_type": "folded",
    "batch_size": 8,
    "max_epoch": 2,
    "best_model_criterion": [["valid", "loss", "min"]],
    "keep_nbest_models": 1,
    "num_workers": 0,
    "seed": 0,
}
DECODE_CONFIG = {"beam_size": 3, "ctc_weight": 1.0, "lm_weight": 0.3, "penalty": 0.0}
LM_OPTIONS = ["--use_lm", "true", "--lm_config", "conf/tiny_lm.yaml", "--inference_config", "conf/decode_lm.yaml",
              "--lm_weight_grid", "0.0 0.5", "--skip_packing", "true"]
LM_EXP = "exp/lm_tiny_lm_en_bpe30"
DECODE = "decode_lm_lm_lm_tiny_lm_en_bpe30_valid.loss.ave_lm_weight_tuned_asr_model_valid.cer_ctc.ave"


@pytest.mark.slow
def test_lm_stages_and_beam_search_with_the_lm_for_every_size(finished_mini_recipe, tmp_path):
    recipe = finished_mini_recipe.copy(tmp_path)  # stages 1-14 done without an LM (greedy decoding)
    (recipe / "conf" / "tiny_lm.yaml").write_text(yaml.safe_dump(LM_CONFIG))
    (recipe / "conf" / "decode_lm.yaml").write_text(yaml.safe_dump(DECODE_CONFIG))
    proc = run_recipe(recipe, "--stop_stage", "13", *LM_OPTIONS)
    assert proc.returncode == 0, proc.stdout[-6000:]

    # stage 6: the LM's text is the training transcripts, the dev and test texts
    train_text = read_table(recipe / "data" / "train" / "text")
    assert read_table(recipe / "dump" / "raw" / "lm_train.txt") == train_text
    assert len(read_table(recipe / "dump" / "raw" / "lm_test.txt")) == 8
    # stages 7-9: ESPnet's statistics, training and perplexity
    assert (recipe / "exp" / "lm_stats_en_bpe30" / "train" / "text_shape.bpe").is_file()
    lm = recipe / LM_EXP
    assert (lm / ".train.done").is_file() and (lm / "valid.loss.ave.pth").exists()
    assert yaml.safe_load((lm / "config.yaml").read_text())["token_list"] == \
        yaml.safe_load((recipe / EXP / "config.yaml").read_text())["token_list"]
    assert float((lm / "perplexity_test" / "ppl").read_text()) > 1.0
    assert "Stage 9: perplexity of dump/raw/test/text:" in proc.stdout

    # stage 12: lm_weight chosen per size on dev, then beam search + LM on test
    decode = recipe / EXP / DECODE
    chosen = yaml.safe_load((decode / "lm_weights.yaml").read_text())
    assert chosen["grid"] == [0.0, 0.5] and set(chosen["lm_weight"]) == {"4", "8"}
    assert set(chosen["dev_wer"]["4"]) == {0.0, 0.5}
    for size in ("4", "8"):
        assert len(read_table(decode / "test" / size / "text")) == 8
        stats = yaml.safe_load((decode / "test" / size / "decode_stats.yaml").read_text())
        assert stats["decoding"] == "beam + LM" and stats["beam_size"] == 3 and stats["num_threads"] == 1
        assert stats["lm_weight"] == chosen["lm_weight"][size] and stats["rtf"] > 0
        assert len(read_table(decode / "lm_weight_tuning" / "0.5" / "dev" / size / "text")) == 8
    results = (recipe / EXP / "RESULTS.md").read_text()
    assert f"`{(EXP + '/' + DECODE)}` (beam + LM (beam 3, lm_weight" in results
    rows = [line for line in results.splitlines() if line.startswith(("| 4 |", "| 8 |"))]
    assert len(rows) == 2 and "n/a" not in results

    # greedy decoding of the same model, then RESULTS.md compares the two decodings per size
    greedy = run_recipe(recipe, "--stage", "12", "--stop_stage", "13", "--skip_packing", "true")
    assert greedy.returncode == 0, greedy.stdout[-3000:]
    results = (recipe / EXP / "RESULTS.md").read_text()
    assert "## Decodings compared" in results
    compared = [line for line in results.splitlines() if line.startswith(("| greedy |", "| beam + LM |"))]
    assert len(compared) == 4

    # a rerun finds every LM stage and the tuned decoding done
    again = run_recipe(recipe, "--stage", "6", "--stop_stage", "12", *LM_OPTIONS)
    assert again.returncode == 0, again.stdout[-3000:]
    for what in ("LM text", "LM statistics", "LM training", "LM perplexity", "lm_weight tuning", "decoding of test"):
        assert f"{what}" in again.stdout and "already done" in again.stdout, what
    assert "Stage 12: decoding dump/raw" not in again.stdout
