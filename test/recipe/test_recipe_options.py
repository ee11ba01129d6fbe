"""asr.sh refuses bad calls with a message naming the culprit and marks nothing done."""
import subprocess

import pytest
import yaml

from recipe.conftest import DATA_OPTS, REPO, TEMPLATE, done_markers, make_recipe, run_asr, write_tiny_corpus

CORPUS_CHECKING_DATA_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
corpus_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --corpus_dir) corpus_dir=$2; shift 2 ;;
        *) echo "local/data.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -d "${corpus_dir}" ] || { echo "local/data.sh: corpus directory '${corpus_dir}' not found" >&2; exit 1; }
"""


@pytest.fixture
def recipe(tmp_path):
    recipe = make_recipe(tmp_path, CORPUS_CHECKING_DATA_SCRIPT)
    write_tiny_corpus(recipe)
    return recipe


@pytest.mark.parametrize(
    "extra, culprit",
    [
        (["--stage", "15"], "unknown stage '15'"),
        (["--stage", "two"], "unknown stage 'two'"),
        (["--stop_stage", "0"], "unknown stage '0'"),
        (["--stage", "5", "--stop_stage", "3"], "--stop_stage 3 comes before --stage 5"),
        (["--asr_config", "conf/missing.yaml"], "conf/missing.yaml"),
        (["--inference_config", "conf/decode_missing.yaml"], "conf/decode_missing.yaml"),
        (["--no_such_option", "1"], "unknown option '--no_such_option'"),
        (["--token_type", "phn"], "--token_type 'phn'"),
        (["--use_lm", "true", "--lm_config", "conf/lm_missing.yaml"], "conf/lm_missing.yaml"),
        (["--use_lm", "maybe"], "--use_lm must be true or false"),
        (["--lm_weight_grid", "0.3 0.6"], "--lm_weight_grid needs --use_lm true"),
        (["--use_lm", "true", "--lm_weight_grid", "0.3 heavy"], "--lm_weight_grid: 'heavy' is not a number"),
        (["--inference_args", "--beam_sise 4"], "unknown decoding option(s) ['--beam_sise']"),
        (["--use_lm", "true", "--stage", "12", "--inference_lm", "nothing.pth"],
         "LM checkpoint exp/lm_train_en_bpe30/nothing.pth does not exist"),
        (["--use_lm", "true", "--batch_size", "8"], "--batch_size 8: beam search decodes one utterance at a time"),
        (["--use_lm", "true", "--asr_inference_module", "espnet_dynenc.bin.ctc_greedy_inference"],
         "--use_lm true needs beam search"),
        (["--nj", "0"], "--nj must be at least 1"),
        (["--subnets", "small"], "--subnets"),
        (["--prune_depths", "4,2"], "--prune_depths must list whole numbers"),
        (["--prune_depths", "4", "--prune_strategies", "top random"], "--prune_strategies 'random' is not supported"),
        (["--prune_metric", "wer"], "--prune_metric 'wer' is not supported"),
        (["stray"], "unexpected argument 'stray'"),
        (["--nj"], "option '--nj' needs a value"),
    ],
)
def test_bad_option_is_refused_before_any_stage(recipe, extra, culprit):
    proc = run_asr(recipe, *DATA_OPTS, "--local_data_opts", f"--corpus_dir {recipe}", *extra)
    assert proc.returncode == 2, proc.stdout
    assert culprit in proc.stdout
    assert "Stage" not in proc.stdout  # no stage started
    assert done_markers(recipe) == [] and not (recipe / "exp").exists()


def test_missing_required_set_is_named(recipe):
    proc = run_asr(recipe, "--train_set", "train", "--test_sets", "test")
    assert proc.returncode == 2 and "--valid_set is required" in proc.stdout


def test_missing_data_script_is_named(recipe):
    (recipe / "local" / "data.sh").unlink()
    proc = run_asr(recipe, *DATA_OPTS)
    assert proc.returncode == 2 and "local/data.sh" in proc.stdout
    assert done_markers(recipe) == []


def test_missing_corpus_dir_fails_stage_1_without_marker(recipe):
    proc = run_asr(recipe, *DATA_OPTS, "--local_data_opts", "--corpus_dir /nonexistent/corpus")
    assert proc.returncode == 1, proc.stdout
    assert "corpus directory '/nonexistent/corpus' not found" in proc.stdout
    assert "Stage 1: local/data.sh --corpus_dir /nonexistent/corpus exited with status 1" in proc.stdout
    assert done_markers(recipe) == []


def test_missing_stage_inputs_are_listed(recipe):
    proc = run_asr(recipe, *DATA_OPTS, "--stage", "4", "--stop_stage", "4")
    assert proc.returncode == 1
    assert "missing input(s): dump/raw/org/train/.done (run stage 3 first)" in proc.stdout
    assert done_markers(recipe) == []


def test_help_lists_stages_and_options(recipe):
    proc = run_asr(recipe, "--help")
    assert proc.returncode == 0
    for text in ("Usage:", "--speed_perturb_factors", "--subnets", "--inference_asr_model", "13   scoring"):
        assert text in proc.stdout


def declared_options(script) -> list:
    """The options of a script: the names its defaults block assigns (utils/parse_options.sh)."""
    command = f". {TEMPLATE / 'utils' / 'parse_options.sh'} && options_declared_in {script}"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True).stdout.split()


def test_every_option_is_written_once_and_has_a_help_line(recipe):
    """asr.sh's option list is its defaults block: each name once there, and in --help."""
    names = declared_options(TEMPLATE / "asr.sh")
    assert len(names) == len(set(names)) and {"stage", "subnets", "test_sets"} <= set(names)
    shown = run_asr(recipe, "--help").stdout
    assert [name for name in names if f"--{name}" not in shown] == []


@pytest.mark.parametrize("corpus", ["librispeech", "tedlium2", "mini_synth"])
def test_data_scripts_take_the_options_of_their_defaults_block(corpus):
    script = REPO / "egs2" / corpus / "asr1" / "local" / "data.sh"
    names = declared_options(script)
    assert "python" in names and len(names) == len(set(names))
    shown = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and [name for name in names if f"--{name}" not in shown.stdout] == []


def test_recipe_shell_scripts_fit_in_120_columns():
    scripts = [TEMPLATE / "asr.sh", TEMPLATE / "utils" / "parse_options.sh"]
    scripts += sorted((REPO / "egs2").glob("*/asr1/local/data.sh"))
    long_lines = [f"{script}:{number}" for script in scripts
                  for number, line in enumerate(script.read_text().splitlines(), 1) if len(line) > 120]
    assert long_lines == []


def test_lm_of_other_tokens_is_refused_before_any_stage(recipe):
    """A trained ASR model and an LM trained on another token list: refused by name, nothing runs."""
    asr, lm = recipe / "exp" / "asr_x", recipe / "exp" / "lm_x"
    for folder, tokens in ((asr, ["<blank>", "<unk>", "a", "b", "<sos/eos>"]),
                           (lm, ["<blank>", "<unk>", "a", "c", "<sos/eos>"])):
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump({"token_list": tokens}))
    (asr / "valid.cer_ctc.ave.pth").write_bytes(b"")
    (lm / "valid.loss.ave.pth").write_bytes(b"")
    proc = run_asr(recipe, *DATA_OPTS, "--stage", "12", "--use_lm", "true", "--asr_exp", "exp/asr_x",
                   "--lm_exp", "exp/lm_x")
    assert proc.returncode == 2, proc.stdout
    assert ("the language model's token list differs from the ASR model's: exp/lm_x/config.yaml has 5 tokens, "
            "exp/asr_x/config.yaml has 5; token 3 is 'c' in the LM and 'b' in the ASR model") in proc.stdout
    assert "Stage" not in proc.stdout and done_markers(recipe) == []
    assert not (recipe / "exp" / "logs").exists()


def test_unknown_key_of_a_decoding_config_is_refused_before_any_stage(recipe):
    (recipe / "conf").mkdir()
    (recipe / "conf" / "decode_lm.yaml").write_text("beam_size: 4\nctc_weight: 1.0\nlm_wieght: 0.3\n")
    proc = run_asr(recipe, *DATA_OPTS, "--use_lm", "true", "--inference_config", "conf/decode_lm.yaml")
    assert proc.returncode == 2, proc.stdout
    assert "--inference_config conf/decode_lm.yaml: unknown decoding option(s) ['lm_wieght']" in proc.stdout
    assert "Stage" not in proc.stdout and done_markers(recipe) == []
