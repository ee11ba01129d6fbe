"""asr.sh --pretrained_model / --ignore_init_mismatch (ESPnet's --init_param), and the embedded
recipe's way from ESPnet's own Conformer to a supernet (local/finetune_from_stock.sh).

A checkpoint that cannot be the start of the training is refused by name before any stage
runs; one that can reaches ESPnet's trainer, whose config.yaml records it.
"""
import os
import shutil
import subprocess

import pytest
import yaml

from recipe.conftest import DATA_OPTS, REPO, done_markers, run_asr
from recipe.test_recipe_end_to_end import CONFIG
from tiny_asr import untrained_model

MINI_SYNTH = REPO / "egs2" / "mini_synth" / "asr1"
# the recipe's token list as asr.sh names it for DATA_OPTS (BPE of 30 unigram pieces, --lang en)
TOKEN_LIST = "data/en_token_list/bpe_unigram30/tokens.txt"
RECIPE_TOKENS = ["<blank>", "<unk>", "▁the", "▁cat", "a", "<sos/eos>"]
STOCK_ENCODER = dict(CONFIG["encoder_conf"])


def prepared(recipe):
    """A recipe whose token list exists (stage 5 done) and a supernet config of CONFIG's shapes."""
    tokens = recipe / TOKEN_LIST
    tokens.parent.mkdir(parents=True)
    tokens.write_text("\n".join(RECIPE_TOKENS) + "\n")
    (tokens.parent / ".done").write_text("done\n")
    (recipe / "conf").mkdir()
    (recipe / "conf" / "train.yaml").write_text(yaml.safe_dump(CONFIG))
    return recipe


def stock_model(recipe, name: str, **changes) -> str:
    """An untrained ESPnet model of CONFIG's encoder shapes in exp/<name>; its path from the recipe."""
    changes = {"encoder_conf": dict(STOCK_ENCODER), "tokens": RECIPE_TOKENS, **changes}
    path = untrained_model(recipe / "exp" / name, **changes)
    return str(path.relative_to(recipe))


def refused_before_any_stage(recipe, *extra) -> str:
    markers = done_markers(recipe)
    proc = run_asr(recipe, *DATA_OPTS, "--stage", "11", "--asr_config", "conf/train.yaml", *extra)
    assert proc.returncode == 2, proc.stdout
    assert "Stage" not in proc.stdout and done_markers(recipe) == markers
    assert not (recipe / "exp" / "logs").exists()
    return proc.stdout


def test_missing_pretrained_model_is_refused_before_any_stage(tiny_recipe):
    out = refused_before_any_stage(prepared(tiny_recipe.recipe), "--pretrained_model", "exp/nowhere.pth:::decoder")
    assert "asr.sh: error: --pretrained_model: file 'exp/nowhere.pth' does not exist" in out


@pytest.mark.slow  # asr.sh's check imports ESPnet (~14 s each)
@pytest.mark.parametrize("changes, culprit", [
    ({"tokens": RECIPE_TOKENS[:3] + ["▁dog"] + RECIPE_TOKENS[4:]},
     f"the model's token list differs from the recipe's: exp/stock/config.yaml has 6 tokens, {TOKEN_LIST} has 6; "
     "token 3 is '▁dog' in the model and '▁cat' in the recipe"),
    ({"encoder": "transformer", "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 48,
                                                 "num_blocks": 2}},
     "the model's encoder is 'transformer' (exp/stock/config.yaml), not a Conformer"),
], ids=["other_tokens", "transformer"])
def test_pretrained_model_that_does_not_fit_is_refused_by_name(tiny_recipe, changes, culprit):
    recipe = prepared(tiny_recipe.recipe)
    model = stock_model(recipe, "stock", **changes)
    out = refused_before_any_stage(recipe, "--pretrained_model", model)
    assert f"asr.sh: error: --pretrained_model {model}: {culprit}" in out


def test_ignore_init_mismatch_must_be_a_bool(tiny_recipe):
    out = refused_before_any_stage(prepared(tiny_recipe.recipe), "--ignore_init_mismatch", "yes")
    assert "--ignore_init_mismatch must be true or false, got 'yes'" in out


# ---------------------------------------------------------------- slow: ESPnet's Conformer -> supernet
def recipe_run_sh(recipe) -> None:
    """run.sh of the tiny recipe: asr.sh with its data options, the caller's options last."""
    options = " ".join(DATA_OPTS + ["--ngpu", "0", "--nj", "1", "--inference_nj", "1", "--nbpe", "20",
                                    "--max_wav_duration", "1.0"])
    (recipe / "run.sh").write_text(f'#!/usr/bin/env bash\nset -euo pipefail\n./asr.sh {options} "$@"\n')
    (recipe / "run.sh").chmod(0o755)


@pytest.mark.slow
def test_stock_conformer_pretrained_converted_and_fine_tuned(tiny_recipe):
    """local/finetune_from_stock.sh: ESPnet's own trainer makes the stock model, init_supernet
    converts it, asr.sh --pretrained_model hands it to the supernet's training (init_param)."""
    recipe = tiny_recipe.recipe
    recipe_run_sh(recipe)
    shutil.copy(MINI_SYNTH / "local" / "finetune_from_stock.sh", recipe / "local")
    (recipe / "conf").mkdir()
    stock = {**CONFIG, "encoder": "conformer", "model": "espnet", "model_conf": {"ctc_weight": 1.0}}
    (recipe / "conf" / "stock.yaml").write_text(yaml.safe_dump(stock))
    (recipe / "conf" / "finetune.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = subprocess.run(["local/finetune_from_stock.sh", "--stock_config", "conf/stock.yaml",
                           "--asr_config", "conf/finetune.yaml", "--stop_stage", "11", "--asr_tag", "ft"],
                          cwd=recipe, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    stock_exp, exp = recipe / "exp" / "asr_ft_stock", recipe / "exp" / "asr_ft"
    init = "exp/asr_ft_stock/supernet_init/model.pth"
    # 1. ESPnet's trainer and model, nothing of this package
    stock_config = yaml.safe_load((stock_exp / "config.yaml").read_text())
    assert stock_config["encoder"] == "conformer" and stock_config["model"] == "espnet"
    assert "-m espnet2.bin.asr_train" in (stock_exp / "train.log").read_text()
    # 2. converted, 3. the supernet's training starts from it
    assert (recipe / init).is_file()
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["init_param"] == [init] and config["ignore_init_mismatch"] is False
    assert config["model"] == "supernet_ctc"
    assert f"Loading pretrained params from {init}" in (exp / "train.log").read_text()
    assert f"Stage 11: starting from --pretrained_model {init}: " in proc.stdout
    assert (exp / ".train.done").is_file()
