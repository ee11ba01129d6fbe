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


PAPER_CONFIGS = sorted(REPO.glob("conf/paper/*/*.yaml"))


def test_paper_onecycle_configs_keep_beta1_constant():
    """torch's OneCycleLR cycles Adam's beta1 (0.95 -> 0.85 -> 0.95) unless told not to; the
    released AdamW keeps torch's default betas throughout."""
    onecycle = [p for p in PAPER_CONFIGS if yaml.safe_load(p.read_text()).get("scheduler") == "onecyclelr"]
    assert onecycle
    for path in onecycle:
        assert yaml.safe_load(path.read_text())["scheduler_conf"].get("cycle_momentum") is False, path


def test_paper_configs_exempt_biases_and_norms_from_weight_decay():
    """RETURNN's updater gives biases and LayerNorm weights no decay; ESPnet decays everything
    unless exclude_weight_decay says otherwise."""
    decayed = [p for p in PAPER_CONFIGS if (yaml.safe_load(p.read_text()).get("optim_conf") or {}).get("weight_decay")]
    assert decayed
    for path in decayed:
        conf = yaml.safe_load(path.read_text())
        assert conf.get("exclude_weight_decay") is True, path
        exempt = conf.get("exclude_weight_decay_conf") or {}
        assert exempt.get("bias_weight_decay") is False and exempt.get("normalization_weight_decay") is False, path


def test_paper_optimizer_decays_weights_but_not_biases_or_norms(tmp_path):
    """One paper config through ESPnet's own build_optimizers (and its scheduler)."""
    import torch

    from espnet_dynenc.registration import load_asr_task

    load_asr_task()
    from espnet2.tasks.abs_task import scheduler_classes

    from espnet_dynenc.espnet_task import DynEncASRTask

    config = REPO / "conf" / "paper" / "tedlium2" / "train_des_simple_topk_16_32_48.yaml"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("<blank>\n<unk>\na\nb\n<sos/eos>\n")
    args = DynEncASRTask.get_parser().parse_args([
        "--config", str(config), "--token_list", str(tokens),
        "--train_data_path_and_name_and_type", "unused,speech,sound",
        "--valid_data_path_and_name_and_type", "unused,speech,sound",
        "--train_shape_file", "unused", "--valid_shape_file", "unused",
    ])
    model = DynEncASRTask.build_model(args)
    optimizer = DynEncASRTask.build_optimizers(args, model)[0]
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert len(optimizer.param_groups) == 2 and len(decay) == len(list(model.parameters()))

    block = model.encoder.encoders[0]
    linear = block.feed_forward.w_1
    conv_norm = block.conv_module.norm
    assert isinstance(linear, torch.nn.Linear) and isinstance(conv_norm, torch.nn.LayerNorm)
    assert decay[id(linear.weight)] == 1e-3
    assert decay[id(linear.bias)] == 0.0
    assert decay[id(block.norm_ff.weight)] == 0.0 and decay[id(conv_norm.weight)] == 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            assert decay[id(module.weight)] == 0.0 and decay[id(module.bias)] == 0.0
        if isinstance(module, torch.nn.Linear):
            assert decay[id(module.weight)] == 1e-3
    # the selector's scores are decayed, as RETURNN decays the released gates
    assert decay[id(model.selector.scores)] == 1e-3

    scheduler = scheduler_classes[args.scheduler](optimizer, **args.scheduler_conf)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert all(tuple(group["betas"]) == (0.9, 0.999) for group in optimizer.param_groups)
