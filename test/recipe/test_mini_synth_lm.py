"""The embedded recipe with a language model: stages 6-9 (ESPnet's LM text, statistics,
training and perplexity) and stage 12's beam search with the LM for every size, its
lm_weight tuned per size on the dev set, on a tiny synthetic corpus with a tiny LM."""
import pytest
import yaml

from recipe.conftest import read_table
from recipe.test_mini_synth_recipe import EXP, run_recipe

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
@pytest.mark.xdist_group("mini_recipe")
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
