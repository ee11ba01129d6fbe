"""Stages 2-5 of asr.sh on a tiny corpus: every file they write, and how reruns behave."""
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile

from recipe.conftest import DATA_OPTS, DEV, TEST, TRAIN, done_markers, make_recipe, read_table, run_asr, write_tiny_corpus

FACTORS = ("0.9", "1.0", "1.1")
STAGES_2_TO_5 = [*DATA_OPTS, "--stage", "2", "--stop_stage", "5", "--speed_perturb_factors", " ".join(FACTORS),
                 "--max_wav_duration", "1.0", "--nbpe", "20"]
KEPT_TRAIN = [u for u in TRAIN if u.words and 0.1 < u.seconds < 1.0]


def prefixed(utt_id: str, factor: str) -> str:
    return utt_id if factor == "1.0" else f"sp{factor}-{utt_id}"


def c_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def assert_consistent_dir(folder: Path, keys):
    """text, utt2spk, spk2utt (and wav.scp when per utterance) list exactly ``keys``, sorted."""
    for name in ("text", "utt2spk"):
        lines = (folder / name).read_text().splitlines()
        assert [line.split()[0] for line in lines] == c_sorted(keys), name
    utt2spk = read_table(folder / "utt2spk")
    spk2utt = {spk: utts.split() for spk, utts in read_table(folder / "spk2utt").items()}
    assert sorted(u for utts in spk2utt.values() for u in utts) == sorted(keys)
    for spk, utts in spk2utt.items():
        assert all(utt2spk[u] == spk for u in utts)


def assert_formatted(folder: Path, keys):
    """wav.scp names 16-bit mono 16 kHz files whose lengths utt2num_samples gives."""
    wav_scp = read_table(folder / "wav.scp")
    lengths = read_table(folder / "utt2num_samples")
    assert list(wav_scp) == c_sorted(keys) and list(lengths) == c_sorted(keys)
    recipe = _recipe_of(folder)
    for utt, path in wav_scp.items():
        info = soundfile.info(recipe / path)  # paths are relative to the recipe directory
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), utt
        assert info.frames == int(lengths[utt]), utt
    assert (folder / "feats_type").read_text().strip() == "raw"
    assert_consistent_dir(folder, keys)


def _recipe_of(folder: Path) -> Path:
    return next(p for p in folder.parents if (p / "asr.sh").exists())


def samples_of(recipe: Path, folder: Path, utt: str) -> np.ndarray:
    return soundfile.read(recipe / read_table(folder / "wav.scp")[utt], dtype="int16")[0]


def check_speed_perturbed_dir(recipe: Path):
    sp = recipe / "data" / "train_sp"
    keys = [prefixed(u.utt_id, f) for u in TRAIN for f in FACTORS]
    assert_consistent_dir(sp, keys)
    assert not (sp / "segments").exists()
    original = read_table(recipe / "data" / "train" / "wav.scp")
    wav_scp = read_table(sp / "wav.scp")
    for utt in TRAIN:
        assert wav_scp[utt.utt_id] == original[utt.utt_id]
        for factor in ("0.9", "1.1"):
            entry = wav_scp[f"sp{factor}-{utt.utt_id}"]
            assert entry.endswith(" |") and "-m espnet_dynenc.bin.speed_perturb" in entry
            assert f"--factor {factor} " in entry
    utt2spk = read_table(sp / "utt2spk")
    assert utt2spk["sp0.9-spk1-tr01"] == "sp0.9-spk1" and utt2spk["spk1-tr01"] == "spk1"
    assert read_table(sp / "text")["sp1.1-spk0-tr02"] == read_table(recipe / "data/train/text")["spk0-tr02"]


def check_formatted_sets(recipe: Path, corpus):
    org_train = recipe / "dump/raw/org/train_sp"
    keys = [prefixed(u.utt_id, f) for u in TRAIN for f in FACTORS]
    assert_formatted(org_train, keys)
    lengths = {k: int(v) for k, v in read_table(org_train / "utt2num_samples").items()}
    for utt in TRAIN:
        source = soundfile.read(recipe / "data/train/wav" / f"{utt.utt_id}.wav", dtype="int16")[0]
        # 16-bit input is copied bit-exactly, also through the 'cat file |' pipes
        assert np.array_equal(samples_of(recipe, org_train, utt.utt_id), source)
        for factor in (0.9, 1.1):
            assert abs(lengths[f"sp{factor}-{utt.utt_id}"] - len(source) / factor) <= 1
    assert_formatted(recipe / "dump/raw/org/dev", [u.utt_id for u in DEV])
    test = recipe / "dump/raw/test"
    assert_formatted(test, [u.utt_id for u in TEST])
    assert not (test / "segments").exists() and not (recipe / "dump/raw/org/test").exists()
    for utt, (start, end) in corpus.test_spans.items():
        # cut from 8 kHz recordings, then resampled to 16 kHz
        expected = 2 * (int(round(end * 8000)) - int(round(start * 8000)))
        assert int(read_table(test / "utt2num_samples")[utt]) == expected
    for job in (1, 2):
        assert "# Ended (code 0)" in (org_train / "logs" / f"format_audio.{job}.log").read_text()


def check_filtered_sets(recipe: Path):
    train = recipe / "dump/raw/train_sp"
    kept = [prefixed(u.utt_id, f) for u in KEPT_TRAIN for f in FACTORS]
    assert_formatted(train, kept)
    assert "tr90" not in (train / "text").read_text()  # no transcript
    assert_formatted(recipe / "dump/raw/dev", [u.utt_id for u in DEV if u.words])
    bpe_text = (recipe / "dump/raw/bpe_train.txt").read_text().splitlines()
    assert bpe_text == (train / "text").read_text().splitlines()


def check_bpe_token_list(recipe: Path):
    import sentencepiece

    folder = recipe / "data/en_token_list/bpe_unigram20"
    tokens = (folder / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert len(tokens) == 20 and len(set(tokens)) == 20
    model = sentencepiece.SentencePieceProcessor(model_file=str(folder / "bpe.model"))
    assert set(model.encode("the cat sat", out_type=str)) <= set(tokens)
    assert (folder / "train.txt").read_text().splitlines()[0] == read_table(recipe / "dump/raw/bpe_train.txt")[
        "sp0.9-spk0-tr00"]


def test_stages_2_to_5_write_every_file(tiny_recipe):
    recipe = tiny_recipe.recipe
    proc = run_asr(recipe, *STAGES_2_TO_5)
    assert proc.returncode == 0, proc.stdout
    check_speed_perturbed_dir(recipe)
    check_formatted_sets(recipe, tiny_recipe)
    check_filtered_sets(recipe)
    check_bpe_token_list(recipe)
    assert [p.relative_to(recipe).as_posix() for p in done_markers(recipe)] == [
        "data/en_token_list/bpe_unigram20/.done", "data/train_sp/.done", "dump/raw/.bpe_train.txt.done",
        "dump/raw/dev/.done", "dump/raw/org/dev/.done", "dump/raw/org/train_sp/.done",
        "dump/raw/test/.done", "dump/raw/train_sp/.done"]
    driver_logs = list((recipe / "exp/logs").glob("asr.*.log"))
    assert len(driver_logs) == 1 and "Stage 5" in driver_logs[0].read_text()

    # the wav.scp pipe of a perturbed utterance is a working Kaldi entry on its own, and
    # produces exactly the samples stage 3 computed in-process
    entry = read_table(recipe / "data/train_sp/wav.scp")["sp0.9-spk0-tr00"]
    piped = subprocess.run(["bash", "-c", entry[:-1]], stdout=subprocess.PIPE, check=True, cwd=recipe).stdout
    samples = soundfile.read(io.BytesIO(piped), dtype="int16")[0]
    assert np.array_equal(samples, samples_of(recipe, recipe / "dump/raw/org/train_sp", "sp0.9-spk0-tr00"))

    # a character token list instead of BPE
    proc = run_asr(recipe, *STAGES_2_TO_5, "--stage", "5", "--token_type", "char")
    assert proc.returncode == 0, proc.stdout
    chars = (recipe / "data/en_token_list/char/tokens.txt").read_text().splitlines()
    assert chars[:2] == ["<blank>", "<unk>"] and chars[-1] == "<sos/eos>"
    assert "<space>" in chars and set("thecatsat") <= set(chars)


def mtimes(recipe: Path, names):
    return {n: (recipe / n).stat().st_mtime_ns for n in names}


def test_rerun_skips_finished_work_and_redoes_unfinished(tiny_recipe):
    recipe = tiny_recipe.recipe
    assert run_asr(recipe, *STAGES_2_TO_5).returncode == 0
    watched = ["data/train_sp/wav.scp", "dump/raw/org/train_sp/wav.scp", "dump/raw/test/wav.scp",
               "dump/raw/train_sp/text", "data/en_token_list/bpe_unigram20/tokens.txt"]
    before = mtimes(recipe, watched)
    proc = run_asr(recipe, *STAGES_2_TO_5)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count("already done") == 8
    assert mtimes(recipe, watched) == before

    # stage 3 stopped half-way through the test set: marker missing, outputs partial
    test = recipe / "dump/raw/test"
    (test / ".done").unlink()
    first_wav = recipe / read_table(test / "wav.scp")["spkA-ts00"]
    first_wav.unlink()
    (test / "wav.scp").write_text("")
    proc = run_asr(recipe, *STAGES_2_TO_5, "--stage", "3")
    assert proc.returncode == 0, proc.stdout
    assert "formatting of train_sp already done" in proc.stdout
    assert "Stage 3: 4 utterances" in proc.stdout  # the test set is formatted again
    assert (test / ".done").is_file() and first_wav.is_file()
    assert len(read_table(test / "wav.scp")) == 4
    assert mtimes(recipe, watched[:2]) == {k: before[k] for k in watched[:2]}


SLOW_DATA_SCRIPT = """#!/usr/bin/env bash
# a data preparation that takes long unless FAST=1
touch data/started
[ "${FAST:-0}" = 1 ] || sleep 60
"""


def test_interrupted_stage_is_not_marked_done_and_reruns(tmp_path):
    recipe = make_recipe(tmp_path, SLOW_DATA_SCRIPT)
    write_tiny_corpus(recipe)
    args = ["./asr.sh", *DATA_OPTS, "--stop_stage", "1"]
    proc = subprocess.Popen(args, cwd=recipe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 30
    while not (recipe / "data/started").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert (recipe / "data/started").exists()
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert not (recipe / "data/.stage1.done").exists()

    done = run_asr(recipe, *DATA_OPTS, "--stop_stage", "1", env={"FAST": "1"})
    assert done.returncode == 0, done.stdout
    assert (recipe / "data/.stage1.done").is_file()
    again = run_asr(recipe, *DATA_OPTS, "--stop_stage", "1")
    assert "data preparation already done" in again.stdout
