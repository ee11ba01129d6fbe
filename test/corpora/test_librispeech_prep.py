"""LibriSpeech preparation on a miniature corpus in the real layout."""
import logging
import os
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
import soundfile

from espnet_dynenc.bin import prepare_librispeech
from espnet_dynenc.corpora import librispeech
from espnet_dynenc.corpora.kaldi_dir import validate_data_dir

from .conftest import REPO_ROOT, VENV_PYTHON, MiniLibriSpeech, read_lines, recording_python

pytestmark = pytest.mark.timeout(120)

MINI_PARTS = ["dev-clean", "dev-other", "train-clean-100"]
DATA_SH = REPO_ROOT / "egs2" / "librispeech" / "asr1" / "local" / "data.sh"


def prepare(mini: MiniLibriSpeech, data: Path, parts: List[str]) -> Dict[str, int]:
    """Prepare parts of the miniature corpus (count checks off: it is far smaller than the real one)."""
    return librispeech.prepare_librispeech(mini.root, data, parts, check_counts=False)


def expected_files(mini: MiniLibriSpeech) -> Dict[str, Dict[str, List[str]]]:
    """Exact content of every file of every data directory the miniature corpus gives."""
    c = mini.corpus
    dev_clean = {
        "text": [
            "1272-128104-0000 MISTER QUILTER IS THE APOSTLE",
            "1272-128104-0001 NOR IS MISTER QUILTER'S MANNER",
            "84-121123-0000 GO DO YOU HEAR",
        ],
        "utt2spk": [
            "1272-128104-0000 1272-128104",
            "1272-128104-0001 1272-128104",
            "84-121123-0000 84-121123",
        ],
        "spk2utt": ["1272-128104 1272-128104-0000 1272-128104-0001", "84-121123 84-121123-0000"],
        "spk2gender": ["1272-128104 m", "84-121123 f"],
        "wav.scp": [
            f"1272-128104-0000 {c}/dev-clean/1272/128104/1272-128104-0000.flac",
            f"1272-128104-0001 {c}/dev-clean/1272/128104/1272-128104-0001.flac",
            f"84-121123-0000 {c}/dev-clean/84/121123/84-121123-0000.flac",
        ],
    }
    dev_other = {
        "text": ["3000-15664-0000 FROM THE HIGHEST POINT", "3000-15664-0001 THE VALLEY BELOW"],
        "utt2spk": ["3000-15664-0000 3000-15664", "3000-15664-0001 3000-15664"],
        "spk2utt": ["3000-15664 3000-15664-0000 3000-15664-0001"],
        "spk2gender": ["3000-15664 m"],
        "wav.scp": [
            f"3000-15664-0000 {c}/dev-other/3000/15664/3000-15664-0000.flac",
            f"3000-15664-0001 {c}/dev-other/3000/15664/3000-15664-0001.flac",
        ],
    }
    train = {
        "text": ["19-198-0000 NORTHANGER ABBEY", "19-198-0001 THIS LITTLE WORK", "19-227-0000 CHAPTER ONE"],
        "utt2spk": ["19-198-0000 19-198", "19-198-0001 19-198", "19-227-0000 19-227"],
        "spk2utt": ["19-198 19-198-0000 19-198-0001", "19-227 19-227-0000"],
        "spk2gender": ["19-198 f", "19-227 f"],
        "wav.scp": [
            f"19-198-0000 {c}/train-clean-100/19/198/19-198-0000.flac",
            f"19-198-0001 {c}/train-clean-100/19/198/19-198-0001.flac",
            f"19-227-0000 {c}/train-clean-100/19/227/19-227-0000.flac",
        ],
    }
    # "dev" joins dev_clean and dev_other, sorted by utterance id in C order.
    dev = {name: sorted(dev_clean[name] + dev_other[name]) for name in dev_clean}
    return {"dev_clean": dev_clean, "dev_other": dev_other, "train_clean_100": train, "dev": dev}


def assert_data_dirs(data: Path, mini: MiniLibriSpeech) -> None:
    """Every expected file, line by line, the .done marker, and nothing else."""
    expected = expected_files(mini)
    assert sorted(p.name for p in data.iterdir()) == sorted(expected)
    for name, files in expected.items():
        directory = data / name
        assert sorted(p.name for p in directory.iterdir()) == sorted([*files, ".done"]), name
        for file_name, lines in files.items():
            assert read_lines(directory / file_name) == lines, f"{name}/{file_name}"
        assert read_lines(directory / ".done") == [str(len(files["text"]))]
        assert validate_data_dir(directory) == len(files["text"])


def test_prepare_writes_expected_data_dirs(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    data = tmp_path / "data"
    counts = prepare(mini_librispeech, data, MINI_PARTS)
    assert counts == {"dev_clean": 3, "dev_other": 2, "train_clean_100": 3, "dev": 5}
    assert_data_dirs(data, mini_librispeech)


def test_corpus_dir_may_be_the_librispeech_folder_itself(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    counts = librispeech.prepare_librispeech(mini_librispeech.corpus, tmp_path / "d", ["dev-other"], False)
    assert counts == {"dev_other": 2}


def test_audio_in_wav_scp_is_readable(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    data = tmp_path / "data"
    prepare(mini_librispeech, data, MINI_PARTS)
    for name in ("dev_clean", "dev_other", "train_clean_100"):
        for line in read_lines(data / name / "wav.scp"):
            utt_id, path = line.split(" ", 1)
            audio, rate = soundfile.read(path, dtype="int16")
            assert rate == 16000
            assert len(audio) == mini_librispeech.samples[utt_id]


def test_all_training_parts_give_train_960(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    corpus = mini_librispeech.corpus
    for part, reader in (("train-clean-360", "84"), ("train-other-500", "3000")):
        # Readers reused under new chapters: enough to see the three parts combined.
        chapter = corpus / part / reader / "7"
        chapter.mkdir(parents=True)
        (chapter / f"{reader}-7.trans.txt").write_text(f"{reader}-7-0000 WORDS\n")
        source = mini_librispeech.flac("19-198-0000", "train-clean-100")
        (chapter / f"{reader}-7-0000.flac").write_bytes(source.read_bytes())
    parts = ["train-clean-100", "train-clean-360", "train-other-500"]
    counts = prepare(mini_librispeech, tmp_path / "data", parts)
    assert counts == {"train_clean_100": 3, "train_clean_360": 1, "train_other_500": 1, "train_960": 5}
    assert read_lines(tmp_path / "data" / "train_960" / "text") == [
        "19-198-0000 NORTHANGER ABBEY",
        "19-198-0001 THIS LITTLE WORK",
        "19-227-0000 CHAPTER ONE",
        "3000-7-0000 WORDS",
        "84-7-0000 WORDS",
    ]
    assert read_lines(tmp_path / "data" / "train_960" / "spk2gender") == [
        "19-198 f",
        "19-227 f",
        "3000-7 m",
        "84-7 f",
    ]


def test_data_sh_through_bash(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    """Stage 1 finds the corpus named by LIBRISPEECH (db.sh), stage 2 prepares it."""
    workdir = tmp_path / "recipe"
    workdir.mkdir()
    env = {**os.environ, "LIBRISPEECH": str(mini_librispeech.root)}
    result = subprocess.run(
        ["bash", str(DATA_SH), "--parts", " ".join(MINI_PARTS), "--relax_checks", "true"]
        + ["--python", str(VENV_PYTHON)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to download" in result.stderr
    assert_data_dirs(workdir / "data", mini_librispeech)


def test_data_sh_downloads_when_db_sh_names_no_corpus(tmp_path: Path):
    """With LIBRISPEECH empty, stage 1 downloads into downloads/ and stage 2 reads from there."""
    python = recording_python(tmp_path)
    env = {**os.environ, "LIBRISPEECH": "", "python": str(python)}
    args = ["--parts", "dev-clean test-other", "--relax_checks", "true", "--base_url", "http://mirror/12"]
    result = subprocess.run(
        ["bash", str(DATA_SH), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert read_lines(tmp_path / "calls.txt") == [
        "-m espnet_dynenc.bin.prepare_librispeech --download --download_only --corpus_dir downloads "
        "--parts dev-clean test-other --base_url http://mirror/12",
        "-m espnet_dynenc.bin.prepare_librispeech --corpus_dir downloads --data_dir data "
        "--parts dev-clean test-other --no_check_counts",
    ]


def test_data_sh_help_and_bad_options(tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "LIBRISPEECH": ""}
        command = ["bash", str(DATA_SH), *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)

    helped = run("--help")
    assert helped.returncode == 0
    assert "Usage: local/data.sh" in helped.stdout and "--relax_checks" in helped.stdout
    nowhere = tmp_path / "nowhere"
    for args, message in [
        (["--frobnicate"], "unknown option or argument '--frobnicate'"),
        (["--stage"], "option --stage needs a value"),
        (["--stage", "one"], "--stage must be a number, got 'one'"),
        (["--relax_checks", "yes"], "--relax_checks must be true or false, got 'yes'"),
        (["--corpus_dir", str(nowhere)], f"corpus folder '{nowhere}' does not exist"),
    ]:
        failed = run(*args)
        assert failed.returncode == 1, args
        assert message in failed.stderr, (args, failed.stderr)
    assert not (tmp_path / "data").exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        prepare_librispeech.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--corpus_dir", "--data_dir", "--parts", "--no_check_counts", "--download", "--base_url"):
        assert option in out


def test_cli_reports_bad_input_in_one_line(mini_librispeech: MiniLibriSpeech, tmp_path: Path, capsys):
    argv = ["--corpus_dir", str(mini_librispeech.root), "--data_dir", str(tmp_path / "data")]
    assert prepare_librispeech.main(argv + ["--parts", "test-clean"]) == 2
    missing = mini_librispeech.corpus / "test-clean"
    err = capsys.readouterr().err
    assert f"prepare_librispeech: error: {missing}: LibriSpeech part 'test-clean' is missing" in err
    assert not (tmp_path / "data").exists()


def test_counts_are_checked_by_default(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    expected_message = r"dev-clean: found 3 utterances .* expected 2703; .*--no_check_counts"
    with pytest.raises(ValueError, match=expected_message):
        librispeech.prepare_librispeech(mini_librispeech.root, tmp_path / "data", ["dev-clean"])
    assert not (tmp_path / "data").exists()


def test_missing_part_directory(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="test-other: LibriSpeech part 'test-other' is missing"):
        prepare(mini_librispeech, tmp_path / "data", ["dev-clean", "test-other"])


def test_unknown_part_name(mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown LibriSpeech part\(s\) \['dev_clean'\]"):
        prepare(mini_librispeech, tmp_path / "data", ["dev_clean"])


def test_not_a_librispeech_folder(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no 'LibriSpeech' folder"):
        librispeech.prepare_librispeech(tmp_path, tmp_path / "data", ["dev-clean"], False)


def test_transcript_line_without_flac_is_skipped_with_a_warning(mini_librispeech, tmp_path, caplog):
    mini_librispeech.flac("1272-128104-0001", "dev-clean").unlink()
    with caplog.at_level(logging.WARNING):
        counts = prepare(mini_librispeech, tmp_path / "data", ["dev-clean"])
    assert counts == {"dev_clean": 2}
    trans = mini_librispeech.corpus / "dev-clean" / "1272" / "128104" / "1272-128104.trans.txt"
    warning = f"{trans}: skipping '1272-128104-0001': its audio file 1272-128104-0001.flac is missing"
    assert warning in caplog.text
    assert read_lines(tmp_path / "data" / "dev_clean" / "text") == [
        "1272-128104-0000 MISTER QUILTER IS THE APOSTLE",
        "84-121123-0000 GO DO YOU HEAR",
    ]


def test_flac_without_transcript_line_is_skipped_with_a_warning(mini_librispeech, tmp_path, caplog):
    chapter = mini_librispeech.corpus / "dev-clean" / "84" / "121123"
    (chapter / "84-121123-0009.flac").write_bytes((chapter / "84-121123-0000.flac").read_bytes())
    with caplog.at_level(logging.WARNING):
        counts = prepare(mini_librispeech, tmp_path / "data", ["dev-clean"])
    assert counts == {"dev_clean": 3}
    assert "skipping audio 84-121123-0009.flac: it has no transcript line" in caplog.text


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("84-999-0001 WRONG CHAPTER", "utterance id '84-999-0001' is not '84-121123-<number>'"),
        ("84-121123-0001", "utterance '84-121123-0001' has no words"),
        ("84-121123-0000 AGAIN", "utterance '84-121123-0000' appears twice"),
    ],
)
def test_malformed_transcript_line_names_file_and_line(mini_librispeech, tmp_path, bad_line, message):
    trans = mini_librispeech.corpus / "dev-clean" / "84" / "121123" / "84-121123.trans.txt"
    with open(trans, "a", encoding="utf-8") as f:
        f.write(bad_line + "\n")
    with pytest.raises(ValueError) as error:
        prepare(mini_librispeech, tmp_path / "data", ["dev-clean"])
    assert str(error.value) == f"{trans}:2: {message}"


def test_missing_transcript_file(mini_librispeech, tmp_path):
    chapter = mini_librispeech.corpus / "dev-other" / "3000" / "15664"
    (chapter / "3000-15664.trans.txt").unlink()
    with pytest.raises(FileNotFoundError, match=f"{chapter}: missing transcript file '3000-15664.trans.txt'"):
        prepare(mini_librispeech, tmp_path / "data", ["dev-other"])


def test_stray_folder_in_a_part(mini_librispeech, tmp_path):
    (mini_librispeech.corpus / "dev-other" / "notes").mkdir()
    with pytest.raises(ValueError, match="dev-other/notes: expected a numbered reader or chapter folder"):
        prepare(mini_librispeech, tmp_path / "data", ["dev-other"])


def test_reader_missing_from_speakers_txt(mini_librispeech, tmp_path):
    speakers = mini_librispeech.corpus / "SPEAKERS.TXT"
    speakers.write_text("".join(l for l in speakers.read_text().splitlines(True) if not l.startswith("3000")))
    message = f"{speakers}: reader '3000' \\(of '3000-15664-0000'\\) is not listed"
    with pytest.raises(ValueError, match=message):
        prepare(mini_librispeech, tmp_path / "data", ["dev-other"])
    assert not (tmp_path / "data" / "dev_other" / ".done").exists()


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("77 | X | dev-clean | 1.0 | Somebody", "sex must be M or F, got 'X'"),
        ("just some text", "expected 'ID | SEX | SUBSET | MINUTES | NAME', got 'just some text'"),
    ],
)
def test_malformed_speakers_txt_names_file_and_line(mini_librispeech, tmp_path, bad_line, message):
    speakers = mini_librispeech.corpus / "SPEAKERS.TXT"
    with open(speakers, "a", encoding="utf-8") as f:
        f.write(bad_line + "\n")
    with pytest.raises(ValueError) as error:
        prepare(mini_librispeech, tmp_path / "data", ["dev-other"])
    assert str(error.value) == f"{speakers}:7: {message}"


def test_missing_speakers_txt(mini_librispeech, tmp_path):
    (mini_librispeech.corpus / "SPEAKERS.TXT").unlink()
    with pytest.raises(FileNotFoundError, match="SPEAKERS.TXT: missing"):
        prepare(mini_librispeech, tmp_path / "data", ["dev-clean"])


def test_rerun_replaces_previous_output(mini_librispeech, tmp_path):
    data = tmp_path / "data"
    prepare(mini_librispeech, data, ["dev-clean"])
    mini_librispeech.flac("84-121123-0000", "dev-clean").unlink()
    prepare(mini_librispeech, data, ["dev-clean"])
    assert read_lines(data / "dev_clean" / "spk2gender") == ["1272-128104 m"]
    assert read_lines(data / "dev_clean" / ".done") == ["2"]
