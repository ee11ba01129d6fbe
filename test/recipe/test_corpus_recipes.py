"""The corpus recipes egs2/librispeech/asr1 and egs2/tedlium2/asr1.

Fast tests check the recipe directories themselves: their links into the template and
conf/paper, that ./run.sh --help and ./asr.sh --help work, and the options run.sh hands to
asr.sh. The slow tests run run.sh on the miniature corpora of test/corpora/conftest.py, in
a copy of the recipe directory whose links point at the real template: LibriSpeech stages
1-5, then stages 10-13 with a tiny supernet; TED-LIUM stages 1-5 with speed perturbation.
"""
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from corpora.conftest import build_librispeech, build_tedlium, write_audio
from recipe.conftest import read_table

REPO = Path(__file__).resolve().parents[2]
CORPORA = ("librispeech", "tedlium2")
DEFAULT_CONFIG = "train_des_simple_topk_16_32_48.yaml"


def recipe_dir(corpus: str) -> Path:
    return REPO / "egs2" / corpus / "asr1"


def expected_links(corpus: str) -> Dict[str, str]:
    """Link name in the recipe -> the relative target it must have."""
    return {
        "asr.sh": "../../TEMPLATE/asr1/asr.sh",
        "path.sh": "../../TEMPLATE/asr1/path.sh",
        "utils": "../../TEMPLATE/asr1/utils",
        "conf/tuning": f"../../../../conf/paper/{corpus}",
        "conf/train_asr.yaml": f"tuning/{DEFAULT_CONFIG}",
    }


def run(command: List[str], cwd: Path, env: Optional[Dict[str, str]] = None, timeout: int = 120):
    """Run a command; stdout and stderr together in ``.stdout``."""
    return subprocess.run(command, cwd=cwd, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


# ------------------------------------------------------------------ the recipe dirs


@pytest.mark.parametrize("corpus", CORPORA)
def test_links_are_relative_and_resolve(corpus):
    recipe = recipe_dir(corpus)
    for name, target in expected_links(corpus).items():
        link = recipe / name
        assert link.is_symlink(), f"{link} is not a symbolic link"
        assert os.readlink(link) == target, f"{link} -> {os.readlink(link)}, expected {target}"
        assert link.exists(), f"{link} -> {target} does not resolve"
    assert (recipe / "conf" / "train_asr.yaml").resolve() == REPO / "conf" / "paper" / corpus / DEFAULT_CONFIG
    for name in ("run.sh", "local/data.sh"):
        assert os.access(recipe / name, os.X_OK), f"{recipe / name} is not executable"
    assert (recipe / "cmd.sh").is_file() and not (recipe / "cmd.sh").is_symlink()


@pytest.mark.parametrize("corpus", CORPORA)
def test_cmd_sh_sets_the_job_runners(corpus):
    proc = run(["bash", "-c", '. ./cmd.sh && echo "${train_cmd}|${decode_cmd}|${cuda_cmd}"'],
               recipe_dir(corpus), env={"cmd_backend": "local"})
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == "utils/run.pl|utils/run.pl|utils/run.pl"


@pytest.mark.parametrize("corpus", CORPORA)
@pytest.mark.parametrize("script", ["./run.sh", "./asr.sh"])
def test_help_works_from_the_recipe_dir(corpus, script):
    proc = run([script, "--help"], recipe_dir(corpus))
    assert proc.returncode == 0, proc.stdout
    assert "Usage:" in proc.stdout and "--subnets" in proc.stdout


@pytest.mark.parametrize("corpus", CORPORA)
def test_readme_names_every_tuning_config(corpus):
    readme = (recipe_dir(corpus) / "README.md").read_text(encoding="utf-8")
    configs = sorted(p.name for p in (recipe_dir(corpus) / "conf" / "tuning").glob("*.yaml"))
    assert configs, "conf/tuning has no configs"
    missing = [name for name in configs if name not in readme]
    assert not missing, f"README.md does not mention {missing}"


def copy_recipe(corpus: str, dest: Path) -> Path:
    """A copy of egs2/<corpus>/asr1 at dest/egs2/<corpus>/asr1, without any data or
    experiments; links that leave the recipe point at the real files by absolute paths."""
    source = recipe_dir(corpus)
    copy = dest / "egs2" / corpus / "asr1"
    shutil.copytree(source, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "dump", "exp", "downloads"))
    for link in [p for p in copy.rglob("*") if p.is_symlink()]:
        original = source / link.relative_to(copy)
        target = original.resolve()
        if source.resolve() not in target.parents:
            link.unlink()
            link.symlink_to(target)
    return copy


ARGUMENT_RECORDER = """#!/usr/bin/env bash
# stands in for asr.sh: one argument per line
printf '%s\\n' "$@" > asr_arguments.txt
"""


def run_sh_arguments(corpus: str, tmp_path: Path, *extra: str) -> Dict[str, str]:
    """The options run.sh passes to asr.sh (the last value of each), via a stand-in asr.sh."""
    copy = copy_recipe(corpus, tmp_path)
    (copy / "asr.sh").unlink()
    (copy / "asr.sh").write_text(ARGUMENT_RECORDER)
    (copy / "asr.sh").chmod(0o755)
    proc = run(["./run.sh", *extra], copy)
    assert proc.returncode == 0, proc.stdout
    words = (copy / "asr_arguments.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(words) % 2 == 0 and all(w.startswith("--") for w in words[::2]), words
    return {name[2:]: value for name, value in zip(words[::2], words[1::2])}


@pytest.mark.parametrize(
    "corpus, expected",
    [
        ("librispeech", {"train_set": "train_960", "valid_set": "dev",
                         "test_sets": "test_clean test_other dev_clean dev_other", "nbpe": "5000",
                         "speed_perturb_factors": "", "bpe_train_text": "data/train_960/text"}),
        ("tedlium2", {"train_set": "train", "valid_set": "dev", "test_sets": "dev test", "nbpe": "500",
                      "speed_perturb_factors": "0.9 1.0 1.1", "bpe_train_text": "data/train/text"}),
    ],
)
def test_run_sh_options(corpus, expected, tmp_path):
    options = run_sh_arguments(corpus, tmp_path)
    for name, value in expected.items():
        assert options[name] == value, name
    assert options["asr_config"] == f"conf/tuning/{DEFAULT_CONFIG}"
    assert options["subnets"] == "16 32 48" and options["ngpu"] == "4" and options["token_type"] == "bpe"
    assert (tmp_path / "egs2" / corpus / "asr1" / options["asr_config"]).is_file()


def test_run_sh_options_on_the_command_line_win(tmp_path):
    options = run_sh_arguments("librispeech", tmp_path, "--ngpu", "1", "--subnets", "16",
                               "--asr_config", "conf/tuning/train_individual_16.yaml")
    assert options["ngpu"] == "1" and options["subnets"] == "16"
    assert options["asr_config"] == "conf/tuning/train_individual_16.yaml"


# ------------------------------------------------------------- the miniature corpora

# The LibriSpeech miniature of test/corpora has dev-clean, dev-other and train-clean-100;
# these parts complete it so that run.sh runs with its own sets (train_960, dev, four tests).
MORE_READERS = (
    "1001 | M | train-clean-360  | 25.00 | Reader One\n"
    "2002 | F | train-other-500  | 25.00 | Reader Two\n"
    "1089 | M | test-clean       |  8.00 | Reader Three\n"
    "1688 | F | test-other       |  8.00 | Reader Four\n"
)
MORE_PARTS = {
    "train-clean-360": {"1001": {"5000": [("0000", "THE LITTLE ABBEY"), ("0001", "CHAPTER TWO")]}},
    "train-other-500": {"2002": {"6000": [("0000", "THE HIGHEST VALLEY")]}},
    "test-clean": {"1089": {"134686": [("0000", "THE LITTLE WORK"), ("0001", "NOR IS THE VALLEY")]}},
    "test-other": {"1688": {"142285": [("0000", "FROM THE ABBEY"), ("0001", "GO DO YOU HEAR")]}},
}


def build_full_librispeech(root: Path) -> Path:
    """The miniature LibriSpeech plus one or two utterances in each of the other four parts."""
    mini = build_librispeech(root)
    with open(mini.corpus / "SPEAKERS.TXT", "a", encoding="utf-8") as speakers:
        speakers.write(MORE_READERS)
    seed = 100
    for part, readers in MORE_PARTS.items():
        for reader, chapters in readers.items():
            for chapter, lines in chapters.items():
                chapter_dir = mini.corpus / part / reader / chapter
                chapter_dir.mkdir(parents=True)
                (chapter_dir / f"{reader}-{chapter}.trans.txt").write_text(
                    "".join(f"{reader}-{chapter}-{num} {words}\n" for num, words in lines), encoding="utf-8")
                for num, _ in lines:
                    seed += 1
                    write_audio(chapter_dir / f"{reader}-{chapter}-{num}.flac", 0.3 + 0.05 * (seed % 5), seed, "FLAC")
    return mini.root


def lines_of(path: Path) -> List[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# A tiny supernet: 2 blocks = 8 units, sizes 4 and 8. Simple-Top-k with one update per k
# step takes k from 7 to 4 in 4 updates; 6 training utterances in batches of 2 for 2 epochs
# are 6 updates, so Step 2 (sandwich rule) runs too.
TINY_CONFIG = {
    "encoder": "dynamic_conformer",
    "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 48, "num_blocks": 2,
                     "macaron_style": True, "rel_pos_type": "latest", "cnn_module_kernel": 7, "dropout_rate": 0.0},
    "model": "supernet_ctc",
    "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8], "selector": "simple_topk",
                   "selector_conf": {"updates_per_k_step": 1, "k_reduction": 1}, "sandwich_stochastic_depth": 0.3},
    "frontend_conf": {"n_fft": 256, "hop_length": 160, "n_mels": 20},
    "optim": "adam",
    "optim_conf": {"lr": 0.002},
    "batch_type": "unsorted",
    "batch_size": 2,
    "max_epoch": 2,
    "best_model_criterion": [["valid", "cer_ctc_4", "min"], ["valid", "cer_ctc", "min"]],
    "keep_nbest_models": 1,
    "num_workers": 0,
    "seed": 0,
}
LIBRISPEECH_SETS = {"train_960": 6, "dev": 5, "test_clean": 2, "test_other": 2, "dev_clean": 3, "dev_other": 2}
TEST_SETS = ("test_clean", "test_other", "dev_clean", "dev_other")


@pytest.mark.slow
def test_librispeech_recipe_on_the_miniature(tmp_path):
    corpus_root = build_full_librispeech(tmp_path / "corpus")
    recipe = copy_recipe("librispeech", tmp_path / "work")
    # the corpus is named in db.sh, as a user would (an empty LIBRISPEECH in the environment
    # hides any outer value); TED-LIUM's test below names it in the environment instead
    with open(recipe / "db.sh", "a", encoding="utf-8") as db:
        db.write(f"LIBRISPEECH={corpus_root}\n")
    env = {"LIBRISPEECH": ""}
    # one decoding job per test set: on 2 cores, starting ESPnet dominates the decoding time
    token_opts = ["--nbpe", "30", "--nj", "2", "--inference_nj", "1", "--ngpu", "0"]

    proc = run(["./run.sh", "--stage", "1", "--stop_stage", "5", "--local_data_opts", "--relax_checks true",
                *token_opts], recipe, env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:]
    # stage 1: the corpus named by db.sh is used, nothing is downloaded
    assert f"stage 1: using the corpus in {corpus_root}; nothing to download" in proc.stdout
    assert not (recipe / "downloads").exists()
    for name, count in LIBRISPEECH_SETS.items():
        scp = lines_of(recipe / "data" / name / "wav.scp")
        assert len(scp) == count, name
        assert all(line.split()[1].startswith(str(corpus_root)) for line in scp), scp
        assert len(lines_of(recipe / "data" / name / "text")) == count
    # stage 2: no speed perturbation for LibriSpeech
    assert "Stage 2: skipped" in proc.stdout and not (recipe / "data" / "train_960_sp").exists()
    # stages 3-4: FLAC dumps; training and dev sets filtered, test sets dumped directly
    raw = recipe / "dump" / "raw"
    for name, count in LIBRISPEECH_SETS.items():
        dumped = raw / name if name in TEST_SETS else raw / "org" / name
        assert (dumped / ".done").is_file(), dumped
        entries = [line.split(maxsplit=1)[1] for line in lines_of(dumped / "wav.scp")]
        assert len(entries) == count and all(e.endswith(".flac") and (recipe / e).is_file() for e in entries)
    for name in ("train_960", "dev"):
        assert len(lines_of(raw / name / "text")) == LIBRISPEECH_SETS[name]
    assert lines_of(raw / "bpe_train.txt") == lines_of(recipe / "data" / "train_960" / "text")
    # stage 5: the sentencepiece model
    bpe = recipe / "data" / "en_token_list" / "bpe_unigram30"
    assert (bpe / "bpe.model").is_file()
    tokens = lines_of(bpe / "tokens.txt")
    assert len(tokens) > 10 and tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert not (recipe / "exp" / "asr_stats_raw_en_bpe30").exists()

    config = tmp_path / "train_tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    proc = run(["./run.sh", "--stage", "10", "--stop_stage", "13", "--asr_config", str(config),
                "--subnets", "4 8", *token_opts], recipe, env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:]
    # stage 10: statistics
    stats = recipe / "exp" / "asr_stats_raw_en_bpe30"
    for name in ("train/feats_stats.npz", "train/speech_shape", "train/text_shape.bpe", "valid/text_shape.bpe"):
        assert (stats / name).is_file(), name
    assert len(lines_of(stats / "train" / "speech_shape")) == LIBRISPEECH_SETS["train_960"]
    # stage 11: both steps of DES training ran
    exp = recipe / "exp" / "asr_train_tiny_raw_en_bpe30"
    for name in ("config.yaml", "valid.cer_ctc.ave.pth", "subnets.yaml", ".train.done"):
        assert (exp / name).exists(), name
    train_log = (exp / "train.log").read_text(encoding="utf-8")
    assert "DES Step 1, update" in train_log and "DES Step 2 (sandwich rule) from update 4" in train_log
    # stage 12: every test set at both sizes, each from the average of its own best epochs
    assert (exp / "valid.cer_ctc_4.ave.pth").exists()
    decode = exp / "decode_ctc_greedy_asr_model_valid.cer_ctc.ave_per_size"
    for name in TEST_SETS:
        for size in ("4", "8"):
            folder = decode / name / size
            assert len(read_table(folder / "text")) == LIBRISPEECH_SETS[name], folder
            run_stats = yaml.safe_load((folder / "decode_stats.yaml").read_text(encoding="utf-8"))
            assert run_stats["num_utterances"] == LIBRISPEECH_SETS[name] and run_stats["parameters"] > 0
            own = "valid.cer_ctc_4.ave.pth" if size == "4" else "valid.cer_ctc.ave.pth"
            assert run_stats["checkpoint"] == own
            # stage 13: scored by words and characters
            for kind in ("wer", "cer"):
                assert "Sum/Avg" in (folder / f"score_{kind}" / "result.txt").read_text(encoding="utf-8")
    # stage 13: one RESULTS.md row per size, every column filled
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    header = next(line for line in results.splitlines() if line.startswith("| size |"))
    for name in TEST_SETS:
        assert f"WER {name} (%)" in header and f"CER {name} (%)" in header and f"RTF {name}" in header
    rows = [line for line in results.splitlines() if line.startswith(("| 4 |", "| 8 |"))]
    assert len(rows) == 2 and "n/a" not in results
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    assert rows[0] in proc.stdout


TEDLIUM_SETS = {"train": 4, "dev": 1, "test": 1}


@pytest.mark.slow
def test_tedlium2_data_stages_on_the_miniature(tmp_path):
    mini = build_tedlium(tmp_path / "corpus")
    recipe = copy_recipe("tedlium2", tmp_path / "work")
    # db.sh keeps a TEDLIUM2 already in the environment
    proc = run(["./run.sh", "--stage", "1", "--stop_stage", "5", "--local_data_opts", "--relax_checks true",
                "--nbpe", "20", "--nj", "2"], recipe, {"TEDLIUM2": str(mini.root)}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert f"stage 1: using the corpus in {mini.root}; nothing to download" in proc.stdout
    assert not (recipe / "downloads").exists()
    for name, count in TEDLIUM_SETS.items():
        assert len(lines_of(recipe / "data" / name / "segments")) == count, name
    # stage 2: three copies of the training set, ids prefixed by the factor
    perturbed = lines_of(recipe / "data" / "train_sp" / "text")
    original = lines_of(recipe / "data" / "train" / "text")
    assert len(perturbed) == 3 * len(original)
    assert {line.split()[0].split("-")[0] for line in perturbed} >= {"sp0.9", "sp1.1"}
    # stages 3-5: dumps of train_sp, dev and test; tokens learned from the unperturbed text
    raw = recipe / "dump" / "raw"
    for dumped in (raw / "org" / "train_sp", raw / "org" / "dev", raw / "test", raw / "train_sp", raw / "dev"):
        assert (dumped / ".done").is_file(), dumped
    assert len(lines_of(raw / "org" / "train_sp" / "wav.scp")) == 3 * TEDLIUM_SETS["train"]
    assert lines_of(raw / "bpe_train.txt") == [line for line in original if len(line.split()) > 1]
    assert (recipe / "data" / "en_token_list" / "bpe_unigram20" / "bpe.model").is_file()
