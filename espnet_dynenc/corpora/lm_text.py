"""Text corpora for the language model, as Kaldi ``text`` files that asr.sh's stage 6 reads.

An LM text corpus is one sentence per line, without ids; ESPnet's ``lm_train`` reads
``<id> <text>`` lines. Each corpus module (``librispeech``, ``tedlium2``) knows where its
text is and how to normalise it like its transcripts; this module numbers the sentences
(``<prefix>_<n>`` with nine digits, so ids sort in line order) and writes the file whole or
not at all. The corpora are large (LibriSpeech's is 40 million sentences, 4 GB), so the
lines are streamed from the compressed files and never held in memory.
"""
import gzip
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from espnet_dynenc.atomic_files import write_lines_atomically

# the local data directory where ESPnet's recipes keep extra LM text (lm_train_text gets it)
DEFAULT_OUTPUT = Path("data") / "local" / "other_text" / "text"


def gzip_lines(paths: Sequence[os.PathLike]) -> Iterator[str]:
    """The lines of gzipped text files, in order, without their newline."""
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield line.rstrip("\n")


def numbered(lines: Iterable[str], prefix: str, normalize: Optional[Callable[[str], str]] = None) -> Iterator[str]:
    """``<prefix>_<n> <text>`` for every line with text after ``normalize``, n from 1."""
    number = 0
    for line in lines:
        text = " ".join((normalize(line) if normalize else line).split())
        if text:
            number += 1
            yield f"{prefix}_{number:09d} {text}"


def write_lm_text(out: os.PathLike, lines: Iterable[str]) -> int:
    """Write ``<id> <text>`` lines to ``out`` atomically; return how many."""
    count = 0

    def counted() -> Iterator[str]:
        nonlocal count
        for line in lines:
            count += 1
            yield line

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_lines_atomically(out, counted())
    return count
