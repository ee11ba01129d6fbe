"""Every shipped training config builds through ESPnet's --dry_run; generated configs are current."""
import subprocess
import sys

import pytest
import yaml

from tiny_asr import REPO

CONFIGS = sorted(p for p in [*REPO.glob("conf/**/*.yaml"), *REPO.glob("egs2/*/asr1/conf/**/*.yaml")]
                 if "model" in (yaml.safe_load(p.read_text()) or {}))


def test_generated_paper_configs_are_up_to_date():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "make_paper_configs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_generated_comparison_configs_are_up_to_date():
    """conf/comparison/*.yaml of the embedded recipe follow the main job's config."""
    script = REPO / "egs2" / "mini_synth" / "asr1" / "local" / "make_comparison_configs.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_there_are_paper_configs_for_both_corpora():
    names = {p.relative_to(REPO).as_posix() for p in CONFIGS}
    for corpus in ("librispeech", "tedlium2"):
        for kind in ("des_simple_topk", "des_iterative_zero_out", "individual_16", "aux_loss",
                     "prune_on_demand_conformer", "prune_on_demand_transformer"):
            assert any(n.startswith(f"conf/paper/{corpus}/train_{kind}") for n in names), (corpus, kind)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_config_passes_espnet_dry_run(config, tmp_path):
    from espnet_dynenc.registration import load_asr_task

    load_asr_task()
    from espnet_dynenc.espnet_task import DynEncASRTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    out = tmp_path / "exp"
    DynEncASRTask.main(cmd=[
        "--config", str(config), "--dry_run", "true", "--token_list", str(tokens), "--output_dir", str(out),
        "--train_data_path_and_name_and_type", "unused,speech,sound",
        "--valid_data_path_and_name_and_type", "unused,speech,sound",
        "--train_shape_file", "unused", "--valid_shape_file", "unused",
    ])
    written = yaml.safe_load((out / "config.yaml").read_text())
    source = yaml.safe_load(config.read_text())
    assert written["encoder"] == source["encoder"] and written["model"] == source["model"]


def test_paper_configs_batch_by_audio_length():
    """~150 s of audio per update: 'length' bins count speech samples only ('numel' would add
    transcript tokens x vocabulary and roughly halve the audio per update)."""
    for path in REPO.glob("conf/paper/*/*.yaml"):
        conf = yaml.safe_load(path.read_text())
        assert conf["batch_type"] == "length" and conf["batch_bins"] == 150 * 16000, path
