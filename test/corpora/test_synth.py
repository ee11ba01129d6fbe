"""The mini_synth corpus: grammar, held-out voices, reproducibility, files and options."""
import dataclasses
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import soundfile

from espnet_dynenc.bin import make_synth_corpus
from espnet_dynenc.corpora import synth
from espnet_dynenc.corpora.kaldi_dir import read_table, validate_data_dir
from espnet_dynenc.corpora.synth import espeak

from .conftest import REPO_ROOT, read_lines

pytestmark = pytest.mark.timeout(120)

DATA_SH = REPO_ROOT / "egs2" / "mini_synth" / "asr1" / "local" / "data.sh"
SIZES = {"num_train": 24, "num_dev": 6, "num_test": 8}


def _available_backend() -> str:
    for name in ("loader", "command"):
        try:
            synth.make_backend(name).close()
            return name
        except synth.EspeakError:
            continue
    pytest.skip("no espeak-ng backend: pip install espeakng-loader==0.2.4, or apt-get install espeak-ng")


def _config(root: Path, backend: str, **changes) -> synth.CorpusConfig:
    options = dict(SIZES, seed=7, backend=backend, nj=2)
    options.update(changes)
    return synth.CorpusConfig(data_dir=root / "data", wav_dir=root / "wav", **options)


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def backend() -> str:
    return _available_backend()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, backend: str) -> synth.CorpusConfig:
    """A tiny corpus made with two workers."""
    config = _config(tmp_path_factory.mktemp("corpus"), backend)
    synth.generate_corpus(config, log=_quiet)
    return config


def _table(config: synth.CorpusConfig, split: str, name: str) -> Dict[str, str]:
    return read_table(config.data_dir / split / name)


# ------------------------------------------------------------------------------ grammar

def test_vocabulary_is_small_closed_and_uppercase():
    words = synth.vocabulary()
    assert 60 <= len(words) <= 150
    assert all(w.isalpha() and w.isupper() for w in words)
    rng = random.Random(0)
    for _ in range(500):
        sentence = synth.make_sentence(rng)
        assert sentence == " ".join(sentence.split())
        assert set(sentence.split()) <= set(words), sentence


def test_number_words():
    assert synth.number_words(1) == "ONE"
    assert synth.number_words(19) == "NINETEEN"
    assert synth.number_words(40) == "FORTY"
    assert synth.number_words(25) == "TWENTY FIVE"
    with pytest.raises(ValueError, match="1..99"):
        synth.number_words(100)


# ------------------------------------------------------------------------ voice plan

def test_voice_plan_is_reproducible_and_holds_out_dev_and_test_voices():
    plan = synth.plan_voices(3, tuple(synth.ACCENTS), synth.VARIANTS, 6, 12)
    assert plan == synth.plan_voices(3, tuple(synth.ACCENTS), synth.VARIANTS, 6, 12)
    assert plan != synth.plan_voices(4, tuple(synth.ACCENTS), synth.VARIANTS, 6, 12)
    train, dev, test = (set(plan.voices[s]) for s in synth.SPLITS)
    assert (len(dev), len(test)) == (6, 12)
    assert not train & dev and not train & test and not dev & test
    # every accent and every variant is still heard in training, in other combinations
    assert {v.accent for v in train} == set(synth.ACCENTS)
    assert {v.variant for v in train} == set(synth.VARIANTS)
    train_speakers = {s.speaker_id for s in plan.speakers("train")}
    assert not train_speakers & {s.speaker_id for s in plan.speakers("test") + plan.speakers("dev")}


def test_utterance_plan_depends_only_on_seed_split_and_index(tmp_path):
    plan = synth.plan_voices(1, tuple(synth.ACCENTS), synth.VARIANTS, 2, 2)
    short = synth.plan_split("train", 5, 1, plan, tmp_path)
    long = synth.plan_split("train", 20, 1, plan, tmp_path)
    assert long[:5] == short
    assert synth.plan_split("train", 5, 2, plan, tmp_path) != short
    for utt in long:
        assert utt.utt_id.startswith(utt.speaker_id + "-")
        low, high = synth.RATE_WPM
        assert low <= utt.rate <= high


def test_babble_is_planned_after_the_utterance_from_other_voices_of_its_split(tmp_path):
    plan = synth.plan_voices(1, tuple(synth.ACCENTS), synth.VARIANTS, 2, 2)
    plain = synth.plan_split("test", 20, 1, plan, tmp_path)
    noisy = synth.plan_split("test", 20, 1, plan, tmp_path, babble_talkers=2, babble_snr=(5.0, 8.0))
    test_voices = {s.voice.espeak_name for s in plan.speakers("test")}
    for clean, utt in zip(plain, noisy):
        # the utterance itself is drawn as without babble
        assert clean == dataclasses.replace(utt, babble=(), snr_db=None) and clean.babble == ()
        assert len(utt.babble) == 2 and 5.0 <= utt.snr_db <= 8.0
        for talker in utt.babble:
            assert talker.espeak_voice in test_voices and talker.espeak_voice != utt.espeak_voice
            assert 0.0 <= talker.start <= 1.0


def test_babble_is_mixed_at_the_planned_ratio():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000) * 0.1
    talkers = [(rng.standard_normal(7000) * 0.3, 0.5), (rng.standard_normal(20000) * 0.05, 0.0)]
    mixed = synth.mix_babble(speech, talkers, 10.0)
    babble = mixed - speech
    assert mixed.shape == speech.shape
    ratio = 20 * np.log10(np.sqrt(np.mean(speech ** 2)) / np.sqrt(np.mean(babble ** 2)))
    assert ratio == pytest.approx(10.0, abs=1e-6)
    # the first talker, 7000 samples cut in at its middle, repeats to cover the utterance
    first = np.tile(talkers[0][0], 4)[3500:3500 + 16000]
    assert np.corrcoef(babble, first)[0, 1] > 0.9


def test_babble_settings_only_when_babble_is_on(tmp_path):
    plain = synth.CorpusConfig(data_dir=tmp_path / "d", wav_dir=tmp_path / "w")
    assert "babble_talkers" not in plain.settings("loader", "1")  # corpora made before still count as done
    noisy = dataclasses.replace(plain, babble_talkers=3, babble_snr=(0.0, 10.0))
    assert noisy.settings("loader", "1")["babble_talkers"] == 3 and noisy.settings("loader", "1")["babble_snr"] == [0.0, 10.0]
    for bad, message in (({"babble_talkers": -1}, "--babble_talkers must be 0 or more, got -1"),
                         ({"babble_snr": (10.0, 5.0)}, "--babble_snr: the low end 10.0 dB is above the high end 5.0 dB")):
        with pytest.raises(ValueError, match=re.escape(message)):
            dataclasses.replace(plain, **bad).validate()


def test_too_many_held_out_voices_is_refused():
    with pytest.raises(ValueError, match="--num_dev_voices \\+ --num_test_voices = 5"):
        synth.plan_voices(1, ("en-us",), ("m1", "m2", "m3", "f1"), 2, 3)


# ---------------------------------------------------------------------------- audio

def test_resampling_to_16k_sets_level_without_clipping():
    tone = (np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050) * 30000).astype(np.int16)
    out = synth.to_16k(tone, 22050, -20.0)
    assert out.dtype == np.int16 and abs(len(out) - 16000) <= 1
    rms_db = 20 * np.log10(np.sqrt(np.mean((out / 32768.0) ** 2)))
    assert rms_db == pytest.approx(-20.0, abs=0.2)
    loud = synth.to_16k(tone, 22050, 0.0)  # a sine cannot reach 0 dBFS RMS below full scale
    assert np.abs(loud).max() <= 0.99 * 32767 + 1


def test_streamed_wav_with_placeholder_sizes_is_read_to_the_end():
    samples = np.arange(-5, 5, dtype=np.int16)
    header = (b"RIFF" + (0x7FFFF024).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
              + (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + (0x7FFFF000).to_bytes(4, "little"))
    audio, rate = espeak._parse_streamed_wav(header + samples.astype("<i2").tobytes())
    assert rate == 22050 and np.array_equal(audio, samples)
    with pytest.raises(synth.EspeakError, match="not produce a WAV"):
        espeak._parse_streamed_wav(b"garbage" * 10)


def test_synthesis_does_not_depend_on_what_came_before(backend):
    engine = synth.make_backend(backend)
    try:
        first = engine.synthesize("turn the red lamp off", "en-us+f5", 170, 60, 11)[0]
        engine.synthesize("set a timer for ten minutes", "en+klatt2", 150, 30, 12)
        again = engine.synthesize("turn the red lamp off", "en-us+f5", 170, 60, 11)[0]
    finally:
        engine.close()
    assert first.size > 10000 and np.array_equal(first, again)


# --------------------------------------------------------------------------- corpus

def test_files_agree_line_by_line(corpus):
    for split in synth.SPLITS:
        split_dir = corpus.data_dir / split
        assert validate_data_dir(split_dir) == SIZES[f"num_{split}"]
        ids = [line.split(" ", 1)[0] for line in read_lines(split_dir / "text")]
        for name in ("utt2spk", "wav.scp", "utt2dur"):
            assert [line.split(" ", 1)[0] for line in read_lines(split_dir / name)] == ids, name
        utt2spk = _table(corpus, split, "utt2spk")
        for utt_id, speaker in utt2spk.items():
            assert utt_id.startswith(speaker + "-")
        spk2utt = _table(corpus, split, "spk2utt")
        assert sorted(u for utts in spk2utt.values() for u in utts.split()) == sorted(ids)
        for text in _table(corpus, split, "text").values():
            assert text.isupper() and set(text.split()) <= set(synth.vocabulary())
    local = corpus.data_dir / "local" / "mini_synth"
    assert sorted(read_lines(local / "train_text.txt")) == sorted(_table(corpus, "train", "text").values())
    assert read_lines(local / "vocabulary.txt") == synth.vocabulary()


def test_audio_is_16k_mono_pcm16_of_plausible_length(corpus):
    for split in synth.SPLITS:
        durations = _table(corpus, split, "utt2dur")
        for utt_id, wav in _table(corpus, split, "wav.scp").items():
            info = soundfile.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert 0.7 <= info.duration <= 5.0, (utt_id, info.duration)
            assert float(durations[utt_id]) == pytest.approx(info.duration, abs=1e-3)
            audio, _ = soundfile.read(wav, dtype="int16")
            assert np.abs(audio).max() > 3000  # speech, not silence


def test_dev_and_test_speakers_never_speak_in_train(corpus):
    speakers = {s: set(_table(corpus, s, "spk2utt")) for s in synth.SPLITS}
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["dev"]
    voice_of = {line.split("\t")[1]: line.split("\t")[2]
                for line in read_lines(corpus.data_dir / "local" / "mini_synth" / "voices.tsv")[1:]}
    train_voices = {voice_of[s] for s in speakers["train"]}
    assert not train_voices & {voice_of[s] for s in speakers["test"] | speakers["dev"]}


def test_same_seed_gives_identical_corpus_whatever_the_workers(corpus, tmp_path):
    again = _config(tmp_path, corpus.backend, nj=1)
    synth.generate_corpus(again, log=_quiet)
    for split in synth.SPLITS:
        assert _table(again, split, "text") == _table(corpus, split, "text")
        assert _table(again, split, "utt2spk") == _table(corpus, split, "utt2spk")
        first_wavs, second_wavs = _table(corpus, split, "wav.scp"), _table(again, split, "wav.scp")
        for utt_id, wav in first_wavs.items():
            assert Path(wav).read_bytes() == Path(second_wavs[utt_id]).read_bytes(), utt_id
    other_seed = _config(tmp_path / "other", corpus.backend, seed=8, nj=1)
    synth.generate_corpus(other_seed, log=_quiet)
    assert _table(other_seed, "train", "text") != _table(corpus, "train", "text")


def test_finished_corpus_is_skipped_and_changed_settings_remake_it(corpus, tmp_path):
    work = _config(tmp_path, corpus.backend, nj=1)
    shutil.copytree(corpus.data_dir, work.data_dir)
    # the copied data directories point at the first corpus's WAV files, so the
    # settings (which include the WAV folder) differ: the corpus is made anew
    assert not synth.generate_corpus(work, log=_quiet).skipped
    assert synth.generate_corpus(work, log=_quiet).skipped
    smaller = _config(tmp_path, corpus.backend, nj=1, num_train=10)
    summary = synth.generate_corpus(smaller, log=_quiet)
    assert not summary.skipped and summary.utterances["train"] == 10
    assert len(list((smaller.wav_dir / "train").glob("*.wav"))) == 10  # stale files gone
    # a missing WAV file or marker means the corpus is not complete
    next(iter((smaller.wav_dir / "test").glob("*.wav"))).unlink()
    assert not synth.generate_corpus(smaller, log=_quiet).skipped
    (smaller.data_dir / synth.DONE_MARKER).unlink()
    assert not synth.generate_corpus(smaller, log=_quiet).skipped


def test_command_backend_writes_a_valid_corpus(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("the espeak-ng program is not installed (apt-get install espeak-ng)")
    config = _config(tmp_path, "command", num_train=4, num_dev=2, num_test=2, nj=1)
    synth.generate_corpus(config, log=_quiet)
    for split in synth.SPLITS:
        for wav in _table(config, split, "wav.scp").values():
            assert soundfile.info(wav).samplerate == 16000


# -------------------------------------------------------------------------- options

@pytest.mark.parametrize("argv, message", [
    (["--backend", "festival"], "--backend: unknown backend 'festival'"),
    (["--num_train", "-5"], "--num_train must be at least 1, got -5"),
    (["--num_test", "0"], "--num_test must be at least 1, got 0"),
    (["--nj", "0"], "--nj must be at least 1, got 0"),
    (["--accents", "en-us,fr"], "--accents: unknown accent(s) ['fr']"),
    (["--variants", "m1,m1"], "--variants: repeated entries"),
    (["--variants", "m1,nosuchvoice"], "no variant(s) ['nosuchvoice']"),
])
def test_bad_options_fail_with_a_message_naming_them(argv, message, tmp_path, capsys, backend):
    args = ["--data_dir", str(tmp_path / "d"), "--wav_dir", str(tmp_path / "w"), "--backend", backend]
    assert make_synth_corpus.main(args + argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d" / synth.DONE_MARKER).exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        make_synth_corpus.main(["--help"])
    assert exit_info.value.code == 0
    assert "--num_train" in capsys.readouterr().out


def test_data_sh_help_and_option_checks(tmp_path):
    shown = subprocess.run(["bash", str(DATA_SH), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--num_train" in shown.stdout and "--python" in shown.stdout
    for argv, message in ((["--num_dev", "-1"], "--num_dev must be a non-negative whole number"),
                          (["--force", "maybe"], "--force must be true or false"),
                          (["--colour", "red"], "unknown option or argument '--colour'")):
        failed = subprocess.run(["bash", str(DATA_SH), *argv], capture_output=True, text=True, cwd=tmp_path)
        assert failed.returncode != 0 and message in failed.stderr, failed.stderr
