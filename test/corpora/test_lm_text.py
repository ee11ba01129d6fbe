"""The language models' text corpora: LibriSpeech's (openslr 11, downloaded) and TED-LIUM 2's
(in the release), as "<id> <sentence>" files, and local/data.sh's stage 3 that writes them."""
import gzip
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from espnet_dynenc.bin import prepare_lm_text
from espnet_dynenc.corpora import librispeech, tedlium2
from espnet_dynenc.corpora.download import DownloadError

from .conftest import REPO_ROOT, MiniTedlium, read_lines, recording_python
from .test_download import server  # noqa: F401 (the local HTTP server fixture)

pytestmark = pytest.mark.timeout(60)
SENTENCES = ["A BANK CHECK", "", "THE OTHER    SIDE", "OF THE RIVER"]
LM_GZ = gzip.compress(("\n".join(SENTENCES) + "\n").encode("utf-8"))


def test_librispeech_lm_text_is_downloaded_verified_and_numbered(server, tmp_path: Path, monkeypatch):  # noqa: F811
    base, behaviour = server
    behaviour.files["/11/librispeech-lm-norm.txt.gz"] = LM_GZ
    behaviour.cut_first_response_after = len(LM_GZ) // 2  # the first connection drops: resumed
    monkeypatch.setattr(librispeech, "LM_TEXT_MD5", hashlib.md5(LM_GZ).hexdigest())
    out = tmp_path / "data" / "local" / "other_text" / "text"
    argv = ["--corpus", "librispeech", "--download_dir", str(tmp_path / "downloads"), "--output", str(out),
            "--url", f"{base}/11/librispeech-lm-norm.txt.gz", "--timeout", "5"]
    assert prepare_lm_text.main(argv) == 0
    assert read_lines(out) == ["librispeech_lm_norm_000000001 A BANK CHECK",
                               "librispeech_lm_norm_000000002 THE OTHER SIDE",
                               "librispeech_lm_norm_000000003 OF THE RIVER"]
    assert [status for _, _, status in behaviour.log] == [200, 206]
    assert prepare_lm_text.main(argv) == 0 and len(behaviour.log) == 2  # kept, not fetched again


def test_librispeech_lm_text_with_another_checksum_is_refused(server, tmp_path: Path):  # noqa: F811
    base, behaviour = server
    behaviour.files["/11/librispeech-lm-norm.txt.gz"] = LM_GZ
    with pytest.raises(DownloadError, match=r"librispeech-lm-norm.txt.gz: md5 is .*, expected "
                                            + librispeech.LM_TEXT_MD5):
        librispeech.download_lm_text(tmp_path, f"{base}/11/librispeech-lm-norm.txt.gz", timeout=5)
    assert list(tmp_path.iterdir()) == []


def write_lm_folder(mini: MiniTedlium) -> None:
    folder = mini.corpus / "LM"
    folder.mkdir(parents=True)
    (folder / "a.en.gz").write_bytes(gzip.compress(b"and it 's here </s>\n</s>\n"))
    (folder / "b.en.gz").write_bytes(gzip.compress(b"<s> we don 't know </s>\n"))


def test_tedlium_lm_text_is_the_release_s_normalised_like_the_transcripts(mini_tedlium: MiniTedlium,
                                                                          tmp_path: Path):
    write_lm_folder(mini_tedlium)
    out = tmp_path / "text"
    assert tedlium2.prepare_lm_text(mini_tedlium.root, out) == 2
    assert read_lines(out) == ["tedlium2_lm_000000001 and it's here", "tedlium2_lm_000000002 we don't know"]


def test_tedlium_without_lm_text_gives_an_empty_file(mini_tedlium: MiniTedlium, tmp_path: Path, caplog):
    out = tmp_path / "text"
    assert tedlium2.prepare_lm_text(mini_tedlium.root, out) == 0
    assert out.read_text() == "" and "the LM text is the training transcripts alone" in caplog.text


@pytest.mark.parametrize("corpus", ["librispeech", "tedlium2"])
def test_data_sh_stage_3_writes_the_lm_text_only_with_a_language_model(corpus, tmp_path: Path):
    """asr.sh passes use_lm to local/data.sh; stage 3 calls prepare_lm_text only then."""
    script = REPO_ROOT / "egs2" / corpus / "asr1" / "local" / "data.sh"
    python = recording_python(tmp_path)
    corpus_env = {"LIBRISPEECH": str(tmp_path), "TEDLIUM2": str(tmp_path)}
    for use_lm, calls in (("false", 1), ("true", 2)):
        (tmp_path / "calls.txt").unlink(missing_ok=True)
        env = {**os.environ, **corpus_env, "use_lm": use_lm}
        done = subprocess.run(["bash", str(script), "--stage", "2", "--python", str(python)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        lines = read_lines(tmp_path / "calls.txt")
        assert len(lines) == calls, lines
    assert lines[1].startswith(f"-m espnet_dynenc.bin.prepare_lm_text --corpus {corpus}")
    assert lines[1].endswith("--output data/local/other_text/text")
    bad = subprocess.run(["bash", str(script), "--lm_text", "yes"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1 and "--lm_text must be true or false, got 'yes'" in bad.stderr
