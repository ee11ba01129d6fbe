"""TED-LIUM 2 preparation on a miniature corpus in the real layout."""
import logging
import os
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
import soundfile

from espnet_dynenc.bin import prepare_tedlium2
from espnet_dynenc.corpora import tedlium2
from espnet_dynenc.corpora.kaldi_dir import read_table, validate_data_dir

from .conftest import REPO_ROOT, VENV_PYTHON, MiniTedlium, read_lines, recording_python

pytestmark = pytest.mark.timeout(120)

DATA_SH = REPO_ROOT / "egs2" / "tedlium2" / "asr1" / "local" / "data.sh"
A, B = "AlphaTalk_2010", "BetaTalk_2011"


def expected_files(mini: MiniTedlium) -> Dict[str, Dict[str, List[str]]]:
    """Exact content of every file, with noise tokens dropped and ESPnet's training padding.

    Training spans before/after padding (0.15 s / 0.1 s, never past the middle of a gap,
    clipped to the recording): 0.29-1.10 -> 0.14-1.15, 1.20-2.00 -> 1.15-2.10,
    2.50-3.20 -> 2.35-3.00 (3 s recording); 0.05-1.50 -> 0.00-1.60. The {COUGH}-only
    segment and the ignored ones are gone.
    """
    return {
        "train": {
            "text": [
                f"{A}-0000029-0000110 so it's a test",
                f"{A}-0000120-0000200 i don't think the end",
                f"{A}-0000250-0000320 <unk> 's we're done",
                f"{B}-0000005-0000150 hello world",
            ],
            "segments": [
                f"{A}-0000029-0000110 {A} 0.14 1.15",
                f"{A}-0000120-0000200 {A} 1.15 2.10",
                f"{A}-0000250-0000320 {A} 2.35 3.00",
                f"{B}-0000005-0000150 {B} 0.00 1.60",
            ],
            "utt2spk": [
                f"{A}-0000029-0000110 {A}",
                f"{A}-0000120-0000200 {A}",
                f"{A}-0000250-0000320 {A}",
                f"{B}-0000005-0000150 {B}",
            ],
            "spk2utt": [
                f"{A} {A}-0000029-0000110 {A}-0000120-0000200 {A}-0000250-0000320",
                f"{B} {B}-0000005-0000150",
            ],
            "wav.scp": [f"{A} {mini.sph('train', A)}", f"{B} {mini.sph('train', B)}"],
        },
        "dev": {
            "text": ["GammaTalk_2012-0000010-0000090 they're here"],
            "segments": ["GammaTalk_2012-0000010-0000090 GammaTalk_2012 0.10 0.90"],
            "utt2spk": ["GammaTalk_2012-0000010-0000090 GammaTalk_2012"],
            "spk2utt": ["GammaTalk_2012 GammaTalk_2012-0000010-0000090"],
            "wav.scp": [f"GammaTalk_2012 {mini.sph('dev', 'GammaTalk_2012')}"],
        },
        "test": {
            "text": ["DeltaTalk_2013-0000020-0000100 what's next"],
            "segments": ["DeltaTalk_2013-0000020-0000100 DeltaTalk_2013 0.20 1.00"],
            "utt2spk": ["DeltaTalk_2013-0000020-0000100 DeltaTalk_2013"],
            "spk2utt": ["DeltaTalk_2013 DeltaTalk_2013-0000020-0000100"],
            "wav.scp": [f"DeltaTalk_2013 {mini.sph('test', 'DeltaTalk_2013')}"],
        },
    }


def assert_data_dirs(data: Path, mini: MiniTedlium) -> None:
    """Every expected file, line by line, the .done marker, and nothing else."""
    expected = expected_files(mini)
    assert sorted(p.name for p in data.iterdir()) == sorted(expected)
    for split, files in expected.items():
        directory = data / split
        assert sorted(p.name for p in directory.iterdir()) == sorted([*files, ".done"]), split
        for file_name, lines in files.items():
            assert read_lines(directory / file_name) == lines, f"{split}/{file_name}"
        assert read_lines(directory / ".done") == [str(len(files["text"]))]
        assert validate_data_dir(directory) == len(files["text"])


def prepare(mini: MiniTedlium, data: Path, **options) -> Dict[str, int]:
    """Prepare the miniature corpus (count checks off: it has four talks, not 1514)."""
    return tedlium2.prepare_tedlium2(mini.root, data, check_counts=False, **options)


def test_prepare_writes_expected_data_dirs(mini_tedlium: MiniTedlium, tmp_path: Path):
    counts = prepare(mini_tedlium, tmp_path / "data")
    assert counts == {"train": 4, "dev": 1, "test": 1}
    assert_data_dirs(tmp_path / "data", mini_tedlium)


def test_segments_lie_inside_readable_recordings(mini_tedlium: MiniTedlium, tmp_path: Path):
    prepare(mini_tedlium, tmp_path / "data")
    for split in tedlium2.SPLITS:
        recordings = read_table(tmp_path / "data" / split / "wav.scp")
        for utt_id, value in read_table(tmp_path / "data" / split / "segments").items():
            recording, start, end = value.split()
            info = soundfile.info(recordings[recording])
            assert info.samplerate == 16000 and info.channels == 1
            assert 0 <= float(start) < float(end) <= info.duration, utt_id
            piece, _ = soundfile.read(
                recordings[recording], start=int(float(start) * 16000), stop=int(float(end) * 16000)
            )
            assert len(piece) == int(float(end) * 16000) - int(float(start) * 16000)


def test_bracket_mode_without_padding(mini_tedlium: MiniTedlium, tmp_path: Path):
    prepare(mini_tedlium, tmp_path / "data", splits=["train"], noise_tokens="bracket", train_padding=(0, 0))
    assert read_lines(tmp_path / "data" / "train" / "text") == [
        f"{A}-0000029-0000110 so it's [NOISE] a test",
        f"{A}-0000120-0000200 i don't think the [UM] end",
        f"{A}-0000210-0000240 [COUGH]",
        f"{A}-0000250-0000320 <unk> 's we're [BREATH] done",
        f"{B}-0000005-0000150 hello [SMACK] world",
    ]
    assert read_lines(tmp_path / "data" / "train" / "segments") == [
        f"{A}-0000029-0000110 {A} 0.29 1.10",
        f"{A}-0000120-0000200 {A} 1.20 2.00",
        f"{A}-0000210-0000240 {A} 2.10 2.40",
        f"{A}-0000250-0000320 {A} 2.50 3.00",
        f"{B}-0000005-0000150 {B} 0.05 1.50",
    ]


@pytest.mark.parametrize(
    "words, drop, bracket",
    [
        ("it 's", "it's", "it's"),
        ("don 't do it", "don't do it", "don't do it"),
        ("{NOISE} 's fine", "'s fine", "[NOISE] 's fine"),
        ("<unk> 's", "<unk> 's", "<unk> 's"),
        ("the(2) end(3)", "the end", "the end"),
        ("a <sil> b", "a b", "a b"),
        ("{BREATH} {COUGH} {SMACK} {UH} {UM} {NOISE}", "", "[BREATH] [COUGH] [SMACK] [UH] [UM] [NOISE]"),
        ("we 're here (AlphaTalk_2010-12)", "we're here", "we're here"),
    ],
)
def test_normalize_words(words: str, drop: str, bracket: str):
    assert tedlium2.normalize_words(words.split(), "drop") == drop
    assert tedlium2.normalize_words(words.split(), "bracket") == bracket


def test_utterance_ids_use_the_decimal_times():
    segment = tedlium2.parse_stm_line("T 1 T 0.29 17.825 <o,f0,male> x", "f.stm:1")
    assert segment.utt_id == "T-0000029-0001783"


def test_data_sh_through_bash(mini_tedlium: MiniTedlium, tmp_path: Path):
    """Stage 1 finds the corpus named by TEDLIUM2 (db.sh), stage 2 prepares it."""
    workdir = tmp_path / "recipe"
    workdir.mkdir()
    env = {**os.environ, "TEDLIUM2": str(mini_tedlium.root)}
    result = subprocess.run(
        ["bash", str(DATA_SH), "--relax_checks", "true", "--python", str(VENV_PYTHON)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to download" in result.stderr
    assert_data_dirs(workdir / "data", mini_tedlium)


def test_data_sh_downloads_when_db_sh_names_no_corpus(tmp_path: Path):
    """With TEDLIUM2 empty, stage 1 downloads into downloads/ and stage 2 reads from there."""
    python = recording_python(tmp_path)
    env = {**os.environ, "TEDLIUM2": ""}
    args = ["--python", str(python), "--noise_tokens", "bracket", "--sph2pipe", "/opt/sph2pipe"]
    result = subprocess.run(
        ["bash", str(DATA_SH), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert read_lines(tmp_path / "calls.txt") == [
        "-m espnet_dynenc.bin.prepare_tedlium2 --download --download_only --corpus_dir downloads "
        f"--url {tedlium2.URL}",
        "-m espnet_dynenc.bin.prepare_tedlium2 --corpus_dir downloads --data_dir data "
        "--splits train dev test --noise_tokens bracket --sph2pipe /opt/sph2pipe",
    ]


def test_data_sh_help_and_bad_options(tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "TEDLIUM2": ""}
        command = ["bash", str(DATA_SH), *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)

    helped = run("-h")
    assert helped.returncode == 0
    assert "Usage: local/data.sh" in helped.stdout and "--noise_tokens" in helped.stdout
    failed = run("--splits")
    assert failed.returncode == 1 and "option --splits needs a value" in failed.stderr
    failed = run("--corpus_dir", str(tmp_path / "nowhere"))
    assert failed.returncode == 1 and "does not exist" in failed.stderr


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        prepare_tedlium2.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--corpus_dir", "--splits", "--no_check_counts", "--noise_tokens", "--sph2pipe"):
        assert option in out
    assert "--train_padding START END" in out


def test_cli_reports_bad_input_in_one_line(mini_tedlium: MiniTedlium, tmp_path: Path, capsys):
    argv = ["--corpus_dir", str(mini_tedlium.root), "--data_dir", str(tmp_path / "data"), "--splits", "dev"]
    assert prepare_tedlium2.main(argv) == 2
    err = capsys.readouterr().err
    assert "prepare_tedlium2: error: TED-LIUM 2 dev: found 1 talks with .sph and .stm, expected 8" in err
    assert prepare_tedlium2.main(argv + ["--no_check_counts"]) == 0


def test_counts_are_checked_by_default(mini_tedlium: MiniTedlium, tmp_path: Path):
    with pytest.raises(ValueError, match=r"train: found 2 talks .* expected 1495; .*--no_check_counts"):
        tedlium2.prepare_tedlium2(mini_tedlium.root, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_missing_split_directory(mini_tedlium: MiniTedlium, tmp_path: Path):
    split_dir = mini_tedlium.corpus / "test"
    for path in sorted(split_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    split_dir.rmdir()
    with pytest.raises(FileNotFoundError, match=f"{split_dir}: TED-LIUM 2 split 'test' is missing"):
        prepare(mini_tedlium, tmp_path / "data")


def test_missing_stm_folder(mini_tedlium: MiniTedlium, tmp_path: Path):
    stm_dir = mini_tedlium.corpus / "dev" / "stm"
    mini_tedlium.stm("dev", "GammaTalk_2012").unlink()
    stm_dir.rmdir()
    with pytest.raises(FileNotFoundError, match=f"{stm_dir}: missing"):
        prepare(mini_tedlium, tmp_path / "data", splits=["dev"])


def test_unpaired_files_are_skipped_with_a_warning(mini_tedlium: MiniTedlium, tmp_path: Path, caplog):
    mini_tedlium.sph("train", B).unlink()
    lonely = mini_tedlium.sph("train", "LonelyTalk_2014")
    lonely.write_bytes(mini_tedlium.sph("dev", "GammaTalk_2012").read_bytes())
    with caplog.at_level(logging.WARNING):
        counts = prepare(mini_tedlium, tmp_path / "data", splits=["train"])
    assert counts == {"train": 3}
    assert f"skipping {B}.stm: no {B}.sph" in caplog.text
    assert "skipping LonelyTalk_2014.sph: no LonelyTalk_2014.stm" in caplog.text
    assert read_lines(tmp_path / "data" / "train" / "wav.scp") == [f"{A} {mini_tedlium.sph('train', A)}"]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (f"{B} 1 {B} 2.0 <o,f0,male>", "<start> <end> <label> <words...>', got 5 field(s)"),
        (f"{B} 1 {B} zero 1.9 <o,f0,male> hi", "start time 'zero' is not a number"),
        (f"{B} 1 {B} 1.6 1,9 <o,f0,male> hi", "end time '1,9' is not a number"),
        (f"{B} 1 {B} 1.6 nan <o,f0,male> hi", "end time 'nan' is not a number"),
        (f"{B} 1 {B} 1.9 1.6 <o,f0,male> hi", "end time 1.6 is not after start time 1.9"),
        (f"{B} 1 {B} 1.6 1.6 <o,f0,male> hi", "end time 1.6 is not after start time 1.6"),
        (f"{B} 1 {B} -0.5 1.6 <o,f0,male> hi", "start time -0.5 is negative"),
        (f"{B} 1 {B} 1.6 1.9 hi there", "field 6 must be a label like '<o,f0,male>', got 'hi'"),
        (f"{A} 1 {A} 1.6 1.9 <o,f0,male> hi", f"names talk '{A}', expected '{B}'"),
        (f"{B} 1 {B} 0.05 1.50 <o,f0,female> other words", "same times as"),
    ],
)
def test_malformed_stm_line_names_file_and_line(mini_tedlium, tmp_path, bad_line, message):
    stm = mini_tedlium.stm("train", B)
    with open(stm, "a", encoding="utf-8") as f:
        f.write(bad_line + "\n")
    with pytest.raises(ValueError) as error:
        prepare(mini_tedlium, tmp_path / "data", splits=["train"])
    assert str(error.value).startswith(f"{stm}:2: ")
    assert message in str(error.value)
    assert not (tmp_path / "data" / "train" / ".done").exists()


def test_repeated_stm_line_is_skipped_with_a_warning(mini_tedlium, tmp_path, caplog):
    stm = mini_tedlium.stm("train", B)
    stm.write_text(stm.read_text() * 2 + ";; a comment line\n\n")
    with caplog.at_level(logging.WARNING):
        counts = prepare(mini_tedlium, tmp_path / "data", splits=["train"])
    assert counts == {"train": 4}
    assert f"{stm}:2: repeats {stm}:1; skipped" in caplog.text


def test_segment_after_the_recording_ends_is_skipped(mini_tedlium, tmp_path, caplog):
    stm = mini_tedlium.stm("test", "DeltaTalk_2013")
    with open(stm, "a", encoding="utf-8") as f:
        f.write("DeltaTalk_2013 1 DeltaTalk_2013 1.30 1.80 <o,f0,female> too late\n")
    with caplog.at_level(logging.WARNING):
        counts = prepare(mini_tedlium, tmp_path / "data", splits=["test"])
    assert counts == {"test": 1}
    assert f"{stm}:2: starts after the recording ends (1.20 s); skipped" in caplog.text


def write_shorten_sphere(path: Path) -> None:
    """A SPHERE header as TED-LIUM's real files have it, over bytes that are not PCM."""
    lines = [
        "NIST_1A",
        "   1024",
        "sample_count -i 32000",
        "sample_rate -i 16000",
        "channel_count -i 1",
        "sample_n_bytes -i 2",
        "sample_coding -s26 pcm,embedded-shorten-v2.00",
        "end_head",
    ]
    header = ("\n".join(lines) + "\n").encode().ljust(1024, b" ")
    path.write_bytes(header + b"\x00" * 500)


def test_compressed_sphere_without_sph2pipe_fails_clearly(mini_tedlium, tmp_path):
    sph = mini_tedlium.sph("dev", "GammaTalk_2012")
    write_shorten_sphere(sph)
    with pytest.raises(RuntimeError) as error:
        prepare(mini_tedlium, tmp_path / "data", splits=["dev"], sph2pipe="no-such-sph2pipe-here")
    message = str(error.value)
    assert message.startswith(f"{sph}: sample_coding 'pcm,embedded-shorten-v2.00' is compressed")
    assert "Debian has no package for sph2pipe" in message and "install_sph2pipe.sh" in message


def test_compressed_sphere_is_piped_through_sph2pipe(mini_tedlium, tmp_path):
    sph = mini_tedlium.sph("dev", "GammaTalk_2012")
    write_shorten_sphere(sph)
    tool = tmp_path / "bin" / "sph2pipe"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexit 1\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    prepare(mini_tedlium, tmp_path / "data", splits=["dev"], sph2pipe=str(tool))
    wav_scp = read_lines(tmp_path / "data" / "dev" / "wav.scp")
    assert wav_scp == [f"GammaTalk_2012 {tool} -f wav -p -c 1 {sph} |"]
    # The header's length (2 s) bounds the segments, as for uncompressed files.
    assert read_lines(tmp_path / "data" / "dev" / "segments") == [
        "GammaTalk_2012-0000010-0000090 GammaTalk_2012 0.10 0.90"
    ]


def test_sphere_header_fields(mini_tedlium):
    header = tedlium2.read_sphere_header(mini_tedlium.sph("train", A))
    assert header.sample_coding == "pcm" and not header.compressed
    assert header.duration == 3.0


def test_file_that_is_not_sphere(mini_tedlium, tmp_path):
    sph = mini_tedlium.sph("test", "DeltaTalk_2013")
    sph.write_bytes(b"RIFF....WAVE")
    with pytest.raises(ValueError, match=f"{sph}: not a NIST SPHERE file"):
        prepare(mini_tedlium, tmp_path / "data", splits=["test"])


def test_unknown_split_and_noise_mode(mini_tedlium, tmp_path):
    with pytest.raises(ValueError, match=r"unknown TED-LIUM 2 split\(s\) \['eval'\]"):
        prepare(mini_tedlium, tmp_path / "data", splits=["eval"])
    with pytest.raises(ValueError, match="noise_tokens must be one of"):
        prepare(mini_tedlium, tmp_path / "data", noise_tokens="keep")
