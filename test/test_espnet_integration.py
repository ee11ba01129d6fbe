"""The package inside ESPnet's own workflow: collect-stats, training, loading, decoding."""
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from tiny_asr import (REPO, make_data_dir, run_main, run_module, train_tiny_model, write_config,
                      write_token_list)

pytestmark = pytest.mark.slow
MASKS = ["0110 1001", "1111 1111"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("espnet")
    train = make_data_dir(root, "train", 12, seed=0)
    valid = make_data_dir(root, "valid", 5, seed=1)
    tokens = write_token_list(root)
    config = write_config(root, model_conf={"subnet_masks": MASKS})
    exp = train_tiny_model(root, config, train, valid, tokens)
    return root, exp, valid


def test_training_writes_per_size_stats_and_checkpoints(trained):
    _, exp, _ = trained
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["encoder"] == "dynamic_conformer" and config["model"] == "supernet_ctc"
    log = (exp / "train.log").read_text()
    for key in ("loss_ctc_4=", "loss_ctc_8=", "cer_ctc_4=", "cer_ctc_8="):
        assert key in log, key
    assert (exp / "valid.cer_ctc.ave.pth").exists()
    assert (exp / "images" / "cer_ctc_4.png").exists()


def test_build_model_from_file_in_fresh_interpreter(trained):
    _, exp, _ = trained
    code = textwrap.dedent(f"""
        import espnet_dynenc
        from espnet2.tasks.asr import ASRTask
        model, args = ASRTask.build_model_from_file("{exp}/config.yaml", "{exp}/valid.cer_ctc.ave.pth", "cpu")
        print(type(model).__name__, type(model.encoder).__name__, model.subnet_sizes,
              "".join("1" if v else "0" for v in model.mask_for(4)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last_line = proc.stdout.strip().splitlines()[-1]  # ESPnet itself may print import notices first
    assert last_line.split() == ["ESPnetSupernetCTCModel", "DynamicConformerEncoder", "[4,", "8]", "01101001"]


def test_speech2text_decodes_a_chosen_subnet(trained):
    root, exp, valid = trained
    out = root / "s2t_4"
    run_module("espnet_dynenc.bin.asr_inference", [
        "--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave.pth",
        "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--output_dir", str(out),
        "--subnet", "4", "--ctc_weight", "1.0", "--beam_size", "2", "--lm_weight", "0", "--ngpu", "0"], cwd=root)
    keys = [line.split()[0] for line in (out / "1best_recog" / "text").read_text().splitlines()]
    assert keys == [line.split()[0] for line in (valid / "wav.scp").read_text().splitlines()]
    with pytest.raises(AssertionError, match="subnet 5 is not one of this model's sizes"):
        run_module("espnet_dynenc.bin.asr_inference", [
            "--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave.pth",
            "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--output_dir", str(root / "bad"),
            "--subnet", "5"], cwd=root)


def _greedy(root, exp, valid, out_name, batch_size, subnets="4 8", in_process=False):
    """ctc_greedy_inference in a fresh interpreter, or with ``in_process`` in this one
    (tiny_asr.run_main: no ESPnet start-up); raises AssertionError with its output on failure."""
    out = root / out_name
    args = ["--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave.pth",
            "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--output_dir", str(out),
            "--batch_size", str(batch_size), "--subnets", subnets, "--flops_reference_seconds", "2"]
    if not in_process:
        run_module("espnet_dynenc.bin.ctc_greedy_inference", args, cwd=root)
        return out
    proc = run_main("espnet_dynenc.bin.ctc_greedy_inference", args, cwd=root)
    if proc.returncode != 0:
        raise AssertionError(f"ctc_greedy_inference failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return out


def test_greedy_decoder_batched_equals_unbatched_for_every_size(trained):
    root, exp, valid = trained
    batched = _greedy(root, exp, valid, "greedy_b3", 3)
    single = _greedy(root, exp, valid, "greedy_b1", 1, in_process=True)
    keys = [line.split()[0] for line in (valid / "wav.scp").read_text().splitlines()]
    for size in ("4", "8"):
        for name in ("text", "token", "token_int", "score"):
            lines = (batched / size / name).read_text().splitlines()
            assert [line.split(" ")[0] for line in lines] == keys
            assert lines == (single / size / name).read_text().splitlines(), (size, name)
        stats = yaml.safe_load((batched / size / "decode_stats.yaml").read_text())
        assert stats["subnet"] == int(size) and stats["num_utterances"] == len(keys)
        assert stats["rtf"] > 0 and stats["parameters"] > 0 and stats["flops_per_second"] > 0
    small = yaml.safe_load((batched / "4" / "decode_stats.yaml").read_text())
    full = yaml.safe_load((batched / "8" / "decode_stats.yaml").read_text())
    assert small["parameters"] < full["parameters"] and small["flops_per_second"] < full["flops_per_second"]


def test_greedy_decoder_rejects_unknown_size(trained):
    root, exp, valid = trained
    with pytest.raises(AssertionError, match=r"--subnets: 6 is not one of this model's sizes \[4, 8\]"):
        _greedy(root, exp, valid, "greedy_bad", 2, subnets="4 6", in_process=True)
    assert not (root / "greedy_bad" / "4" / "decode_stats.yaml").exists()


def test_launcher_keeps_registration_in_spawned_workers(tmp_path):
    script = tmp_path / "spawn.py"
    out = tmp_path / "names.txt"
    script.write_text(textwrap.dedent(f"""
        import torch.multiprocessing as mp
        import tiny_asr
        if __name__ == "__main__":
            mp.spawn(tiny_asr.report_encoder_names, args=("{out}",), nprocs=1)
    """))
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'test'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.python", str(script)], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dynamic_conformer" in out.read_text().split()
    # Without the launcher, a spawned worker does not know the encoder.
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dynamic_conformer" not in out.read_text().split()
