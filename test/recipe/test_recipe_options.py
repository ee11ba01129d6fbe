"""asr.sh refuses bad calls with a message naming the culprit and marks nothing done."""
import pytest

from recipe.conftest import DATA_OPTS, done_markers, make_recipe, run_asr, write_tiny_corpus

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
        (["--use_lm", "true"], "--use_lm true"),
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
