"""Split a key file (``wav.scp``, ``text``, ...) into N contiguous shards of near-equal size.

Shards keep whole lines in file order (so every shard stays sorted) and differ in size by
at most one line, the earlier shards taking the extra lines, as Kaldi's split_scp.pl does.
"""
from pathlib import Path
from typing import List, Sequence

from espnet_dynenc.recipe.tables import read_lines, write_lines


def split_evenly(lines: Sequence[str], parts: int) -> List[List[str]]:
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    if len(lines) < parts:
        raise ValueError(f"cannot split {len(lines)} lines into {parts} non-empty parts")
    base, extra = divmod(len(lines), parts)
    shards, start = [], 0
    for index in range(parts):
        size = base + (1 if index < extra else 0)
        shards.append(list(lines[start : start + size]))
        start += size
    return shards


def split_file(source: Path, outputs: Sequence[Path]) -> List[int]:
    """Write the shards of ``source`` to ``outputs``; return the shard sizes."""
    shards = split_evenly(read_lines(source), len(outputs))
    for path, shard in zip(outputs, shards):
        write_lines(path, shard)
    return [len(s) for s in shards]
