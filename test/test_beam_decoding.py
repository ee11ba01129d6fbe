"""Beam search with an LM for every size in one pass (ctc_beam_inference), against ESPnet's own
asr_inference decoding one chosen subnet, and its refusals of bad input."""
import pytest
import yaml

from tiny_asr import made_once, run_main, run_module, trained_supernet

pytestmark = pytest.mark.slow
LM_CONFIG = {
    "lm": "seq_rnn",
    "lm_conf": {"unit": 16, "nlayers": 1},
    "optim": "adam",
    "optim_conf": {"lr": 0.01},
    "batch_type": "unsorted",
    "batch_size": 4,
    "max_epoch": 2,
    "best_model_criterion": [["valid", "loss", "min"]],
    "keep_nbest_models": 1,
    "num_workers": 0,
    "seed": 0,
}
SEARCH = ["--beam_size", "3", "--ctc_weight", "1.0", "--penalty", "0.0"]


def train_lm(root, train, valid, tokens, name="lm"):
    """ESPnet's lm_train: collect-stats, then training; returns the experiment directory."""
    config = root / f"{name}.yaml"
    config.write_text(yaml.safe_dump(LM_CONFIG))
    common = ["--use_preprocessor", "true", "--token_type", "char", "--token_list", str(tokens),
              "--config", str(config), "--ngpu", "0",
              "--train_data_path_and_name_and_type", f"{train}/text,text,text",
              "--valid_data_path_and_name_and_type", f"{valid}/text,text,text"]
    stats = root / f"{name}_stats"
    run_module("espnet2.bin.lm_train", common + ["--collect_stats", "true", "--output_dir", str(stats),
                                                 "--train_shape_file", f"{train}/text",
                                                 "--valid_shape_file", f"{valid}/text"], cwd=root)
    exp = root / name
    run_module("espnet2.bin.lm_train", common + ["--output_dir", str(exp),
                                                 "--train_shape_file", f"{stats}/train/text_shape",
                                                 "--valid_shape_file", f"{stats}/valid/text_shape"], cwd=root)
    return exp


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The session's tiny supernet (tiny_asr.trained_supernet, shared with the deploy tests) and
    an LM trained once per session on its transcripts; decoding outputs go to a folder of this file."""
    root = tmp_path_factory.mktemp("beam")
    _, train, valid, tokens, exp = trained_supernet(tmp_path_factory)
    lm = made_once(tmp_path_factory, "lm", lambda folder: train_lm(folder, train, valid, tokens)) / "lm"
    return root, exp, lm, valid


def asr_args(exp, valid):
    return ["--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave.pth",
            "--data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound", "--ngpu", "0"]


def lm_args(lm):
    return ["--lm_train_config", f"{lm}/config.yaml", "--lm_file", f"{lm}/valid.loss.ave.pth"]


def beam(root, exp, lm, valid, out_name, *extra, in_process=False):
    """ctc_beam_inference with the LM, in a fresh interpreter or (``in_process``, tiny_asr.run_main)
    in this one."""
    out = root / out_name
    in_process_or_not(in_process, "espnet_dynenc.bin.ctc_beam_inference", asr_args(exp, valid) + lm_args(lm) + SEARCH + [
        "--output_dir", str(out), "--subnets", "4 8", "--flops_reference_seconds", "2", *extra], root)
    return out


def in_process_or_not(in_process, module, args, cwd):
    if not in_process:
        return run_module(module, args, cwd=cwd)
    proc = run_main(module, args, cwd=cwd)
    assert proc.returncode == 0, f"{module} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


def beam_fails(root, *args):
    """A refused decoding, run in this process (tiny_asr.run_main): the refusals happen before decoding."""
    return run_main("espnet_dynenc.bin.ctc_beam_inference", list(args), cwd=root)


def test_every_size_decodes_as_espnet_decodes_that_size_alone(models):
    """Switching subnet, CTC head and LM weight per target inside one Speech2Text gives the
    tokens of ESPnet's asr_inference built for that one subnet."""
    root, exp, lm, valid = models
    ours = beam(root, exp, lm, valid, "beam_lm", "--lm_weight", "0.5")
    for size in ("4", "8"):
        alone = root / f"espnet_{size}"
        run_module("espnet_dynenc.bin.asr_inference", asr_args(exp, valid) + lm_args(lm) + SEARCH + [
            "--lm_weight", "0.5", "--subnet", size, "--output_dir", str(alone)], cwd=root)
        expected = [line.rstrip() for line in (alone / "1best_recog" / "token_int").read_text().splitlines()]
        assert (ours / size / "token_int").read_text().splitlines() == expected, size
        stats = yaml.safe_load((ours / size / "decode_stats.yaml").read_text())
        assert stats["decoding"] == "beam + LM" and stats["lm_weight"] == 0.5 and stats["beam_size"] == 3
        assert stats["num_utterances"] == 4 and stats["rtf"] > 0 and stats["parameters"] > 0


def test_each_size_takes_its_own_tuned_weight(models, tmp_path):
    root, exp, lm, valid = models
    weights = tmp_path / "lm_weights.yaml"
    weights.write_text(yaml.safe_dump({"lm_weight": {"4": 0.0, "8": 0.7}}))
    out = beam(root, exp, lm, valid, "beam_tuned", "--lm_weights", str(weights), in_process=True)
    assert yaml.safe_load((out / "4" / "decode_stats.yaml").read_text())["lm_weight"] == 0.0
    assert yaml.safe_load((out / "8" / "decode_stats.yaml").read_text())["lm_weight"] == 0.7
    weights.write_text(yaml.safe_dump({"lm_weight": {"4": 0.0}}))
    failed = beam_fails(root, *asr_args(exp, valid), *lm_args(lm), "--output_dir", str(tmp_path / "x"),
                        "--lm_weights", str(weights))
    assert failed.returncode == 2 and "no weight for ['8']" in failed.stderr


def test_without_lm_it_is_plain_beam_search(models):
    root, exp, _, valid = models
    out = root / "beam_only"
    in_process_or_not(True, "espnet_dynenc.bin.ctc_beam_inference", asr_args(exp, valid) + SEARCH + [
        "--output_dir", str(out), "--subnets", "8"], root)
    stats = yaml.safe_load((out / "8" / "decode_stats.yaml").read_text())
    assert stats["decoding"] == "beam" and "lm_weight" not in stats


def test_bad_input_is_refused_by_name(models, tmp_path):
    root, exp, lm, valid = models
    out = ["--output_dir", str(tmp_path / "out")]
    other_tokens = tmp_path / "lm_config.yaml"
    config = yaml.safe_load((lm / "config.yaml").read_text())
    config["token_list"] = config["token_list"][:3] + ["zz"] + config["token_list"][4:]
    other_tokens.write_text(yaml.safe_dump(config))
    count = len(config["token_list"])
    cases = [
        (["--lm_train_config", str(other_tokens), "--lm_file", f"{lm}/valid.loss.ave.pth"],
         f"{other_tokens} has {count} tokens, {exp}/config.yaml has {count}; token 3 is 'zz' in the LM"),
        (["--lm_train_config", f"{lm}/config.yaml", "--lm_file", f"{lm}/missing.pth"],
         f"--lm_file: no such file: {lm}/missing.pth"),
        (lm_args(lm) + ["--ctc_weight", "0.5"], "--ctc_weight 0.5"),
        (lm_args(lm) + ["--batch_size", "4"], "--batch_size 4: beam search decodes one utterance at a time"),
    ]
    for extra, message in cases:
        failed = beam_fails(root, *asr_args(exp, valid), *out, *extra)
        assert failed.returncode != 0 and message in failed.stderr, (extra, failed.stderr[-2000:])
    bad_config = tmp_path / "decode_bad.yaml"
    bad_config.write_text("beam_sise: 4\n")
    failed = beam_fails(root, *asr_args(exp, valid), *out, "--config", str(bad_config))
    assert failed.returncode == 2 and f"--config {bad_config}: unknown option(s) ['beam_sise']" in failed.stderr
    assert not (tmp_path / "out").exists()
