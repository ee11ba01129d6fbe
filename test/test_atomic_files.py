"""Files written whole or not at all: what a reader or a resumed run may rely on."""
from pathlib import Path

import pytest

from espnet_dynenc.atomic_files import (
    replace_atomically, write_directory_atomically, write_lines_atomically, write_text_atomically,
)


def test_the_writer_sees_a_hidden_name_with_the_same_suffix(tmp_path: Path):
    # the WAV writer and numpy.save go by the suffix, so the temporary name keeps it
    seen = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"RIFF")

    replace_atomically(tmp_path / "utt1.wav", write)
    assert seen == [tmp_path / ".utt1.tmp.wav"]
    assert (tmp_path / "utt1.wav").read_bytes() == b"RIFF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["utt1.wav"]


def test_a_failing_writer_leaves_the_old_file_untouched(tmp_path: Path):
    target = tmp_path / "pkg.tar.gz.complete"
    target.write_text("old\n", encoding="utf-8")

    def write(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(target, write)
    assert target.read_text(encoding="utf-8") == "old\n"


def test_text_and_lines_replace_the_whole_file(tmp_path: Path):
    marker = tmp_path / ".done"
    write_text_atomically(marker, "3\n")
    assert marker.read_text(encoding="utf-8") == "3\n"
    table = tmp_path / "utt2dur"
    table.write_text("stale line\nanother\n", encoding="utf-8")
    write_lines_atomically(table, (f"u{i} {i}.000" for i in range(2)))
    assert table.read_text(encoding="utf-8") == "u0 0.000\nu1 1.000\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".done", "utt2dur"]


def test_a_directory_appears_whole_or_not_at_all(tmp_path: Path):
    target = tmp_path / "out" / "model"

    def write(folder: Path) -> None:
        assert not target.exists() and folder.name == ".model.tmp"
        (folder / "config.yaml").write_text("a: 1\n", encoding="utf-8")
        (folder / "model.pth").write_bytes(b"x")

    write_directory_atomically(target, write)
    assert sorted(p.name for p in target.iterdir()) == ["config.yaml", "model.pth"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]

    def fail(folder: Path) -> None:
        (folder / "config.yaml").write_text("half", encoding="utf-8")
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        write_directory_atomically(tmp_path / "other", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(FileExistsError, match="model exists"):
        write_directory_atomically(target, write)
