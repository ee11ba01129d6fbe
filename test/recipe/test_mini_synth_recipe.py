"""The embedded recipe, egs2/mini_synth/asr1/run.sh, end to end with a tiny corpus and model.

The recipe directory is mirrored into a temporary directory (its run.sh, cmd.sh and
local/data.sh as they are; asr.sh, path.sh and utils linked to the template) so the test
leaves the repository untouched; only the corpus size and the training config are small.
"""
import json
import os
import shutil
import subprocess
import sys
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


@pytest.mark.slow
@pytest.mark.xdist_group("mini_recipe")
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
        assert len(summary["sizes"][size]["utterances"]["test"]) == 8
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
