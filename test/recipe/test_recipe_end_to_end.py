"""asr.sh stages 1-13 for real: ESPnet statistics, supernet training, decoding, scoring."""
import pytest
import yaml

from recipe.conftest import DATA_OPTS, read_table, run_asr

CONFIG = {
    "encoder": "dynamic_conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 48, "num_blocks": 2,
                     "macaron_style": True, "rel_pos_type": "latest", "cnn_module_kernel": 7, "dropout_rate": 0.0,
                     "interctc_layer_idx": [1]},
    "model": "supernet_ctc",
    "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8], "interctc_weight": 0.3},
    "frontend_conf": {"n_fft": 256, "hop_length": 160, "n_mels": 20},
    "optim": "adam",
    "optim_conf": {"lr": 0.002},
    "batch_type": "unsorted",
    "batch_size": 4,
    "max_epoch": 1,
    # the pruned depth 1 from its own best epochs: those of the exit after block 1
    "best_model_criterion": [["valid", "cer_interctc_layer1", "min"], ["valid", "cer_ctc", "min"]],
    "keep_nbest_models": 1,
    "num_workers": 0,
    "seed": 0,
}


@pytest.mark.slow
def test_all_stages_with_the_project_entry_points(tiny_recipe):
    recipe = tiny_recipe.recipe
    (recipe / "conf").mkdir()
    (recipe / "conf" / "train_tiny.yaml").write_text(yaml.safe_dump(CONFIG))
    proc = run_asr(recipe, *DATA_OPTS, "--nj", "1", "--inference_nj", "1", "--ngpu", "0", "--nbpe", "20",
                   "--max_wav_duration", "1.0", "--asr_config", "conf/train_tiny.yaml",
                   "--prune_depths", "1", "--prune_strategies", "top greedy", timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    exp = recipe / "exp" / "asr_train_tiny_raw_en_bpe20"
    stats = recipe / "exp" / "asr_stats_raw_en_bpe20"
    for name in ("train/feats_stats.npz", "train/speech_shape", "train/text_shape.bpe", "valid/text_shape.bpe"):
        assert (stats / name).is_file(), name
    assert (exp / "config.yaml").is_file() and (exp / "valid.cer_ctc.ave.pth").exists()
    # two criteria: the trainer made each average again on its own (espnet_dynenc.checkpoint_averaging)
    assert "averaged again one criterion at a time" in (exp / "train.log").read_text()
    assert (exp / "valid.cer_interctc_layer1.ave.pth").exists()
    # a depth with its own checkpoint: the decoding of several checkpoints has its own name
    decode = exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave_per_size" / "test"
    for size in ("4", "8"):
        assert len(read_table(decode / size / "score")) == 4
        run_stats = yaml.safe_load((decode / size / "decode_stats.yaml").read_text())
        assert run_stats["num_utterances"] == 4 and run_stats["parameters"] > 0
        assert (decode / size / "score_cer" / "result.txt").is_file()
    plan = yaml.safe_load((decode.parent / "pruning" / "pruning_plan.yaml").read_text())
    assert plan["subnet"] == 8 and set(plan["skip_blocks"]) == {"top", "greedy"}
    for strategy in ("top", "greedy"):
        pruned = decode / "pruned" / strategy / "1"
        assert len(read_table(pruned / "text")) == 4 and (pruned / "score_wer" / "result.txt").is_file()
        depth_stats = yaml.safe_load((pruned / "decode_stats.yaml").read_text())
        assert depth_stats["checkpoint"] == "valid.cer_interctc_layer1.ave.pth", depth_stats
    results = (exp / "RESULTS.md").read_text()
    assert "## Layer pruning on demand: subnet 8, 2 blocks" in results
    assert "| top | 1 | 1 |" in results and "| none | 2 | none |" in results
    rows = [line for line in results.splitlines() if line.startswith("| 4 |") or line.startswith("| 8 |")]
    assert len(rows) == 2 and "n/a" not in results
    assert rows[0] in proc.stdout
