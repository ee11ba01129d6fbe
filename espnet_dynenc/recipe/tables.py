"""Read and write the ``<key> <value>`` files of Kaldi-style data directories.

Kaldi tools expect these files sorted by key in C-locale (byte) order. Writes go to a
temporary name first and are renamed, so an interrupted run never leaves a file that
looks complete but is not.

This is the one place that sorts, inverts and writes such tables: the recipe stages use
it directly, and the corpus preparation through ``espnet_dynenc.corpora.kaldi_dir``.
"""
import os
from pathlib import Path
from typing import Dict, Iterable, List

from espnet_dynenc.atomic_files import write_lines_atomically


def read_table(path: os.PathLike) -> Dict[str, str]:
    """Key -> rest of the line, in file order; a line with only a key maps to ''."""
    table: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ")
            if key in table:
                raise ValueError(f"{path}:{lineno}: key '{key}' appears twice")
            table[key] = value.strip()
    return table


def read_lines(path: os.PathLike) -> List[str]:
    """Non-empty lines without their newline."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def c_sorted(keys: Iterable[str]) -> List[str]:
    """Sort like ``LC_ALL=C sort``: by the UTF-8 bytes."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def write_lines(path: os.PathLike, lines: Iterable[str]) -> None:
    """Write lines atomically (temporary file, then rename)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_lines_atomically(path, lines)


def write_table(path: os.PathLike, table: Dict[str, str]) -> None:
    """Write ``key value`` lines sorted by key; an empty value writes the key alone."""
    write_lines(path, (f"{k} {table[k]}".rstrip() for k in c_sorted(table)))


def spk2utt_of(utt2spk: Dict[str, str]) -> Dict[str, str]:
    """Invert utt2spk into spk2utt (utterances of a speaker in sorted order)."""
    speakers: Dict[str, List[str]] = {}
    for utt in c_sorted(utt2spk):
        speakers.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in speakers.items()}


def restrict(table: Dict[str, str], keys: Iterable[str]) -> Dict[str, str]:
    """The entries of ``table`` whose key is in ``keys``."""
    wanted = set(keys)
    return {k: v for k, v in table.items() if k in wanted}

