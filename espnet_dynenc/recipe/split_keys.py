"""Split a key file (``wav.scp``, ``text``, ...) into N contiguous shards of near-equal size.

Shards keep whole lines in file order (so every shard stays sorted) and differ in size by
at most one line, the earlier shards taking the extra lines, as Kaldi's split_scp.pl does.
"""
import itertools
from pathlib import Path
from typing import Iterator, List, Sequence

from espnet_dynenc.recipe.tables import write_lines


def split_evenly(lines: Sequence[str], parts: int) -> List[List[str]]:
    shards, start = [], 0
    for size in shard_sizes(len(lines), parts):
        shards.append(list(lines[start : start + size]))
        start += size
    return shards


def shard_sizes(total: int, parts: int) -> List[int]:
    """How many lines each of ``parts`` shards of ``total`` lines gets (as ``split_evenly``)."""
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    if total < parts:
        raise ValueError(f"cannot split {total} lines into {parts} non-empty parts")
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def _non_empty_lines(source: Path) -> Iterator[str]:
    with open(source, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line.rstrip("\n")


def split_file(source: Path, outputs: Sequence[Path]) -> List[int]:
    """Write the shards of ``source`` to ``outputs``; return the shard sizes.

    The file is read twice, counting and then copying, and never held in memory: the
    text an LM learns from can have tens of millions of lines (stage 7 splits it). A file
    with fewer lines than shards is refused, naming it."""
    try:
        sizes = shard_sizes(sum(1 for _ in _non_empty_lines(source)), len(outputs))
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    lines = _non_empty_lines(source)
    for path, size in zip(outputs, sizes):
        write_lines(path, itertools.islice(lines, size))
    return sizes
