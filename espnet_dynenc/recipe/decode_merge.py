"""Stage 12: merge the outputs of parallel decoding jobs, size by size.

Each job directory holds ``<size>/{text,token,token_int,score,decode_stats.yaml}``. The
merged ``<size>/`` gets the line files concatenated and sorted by utterance id, and one
``decode_stats.yaml`` whose totals add up the jobs' and whose real-time factor is
sum(decode_seconds) / sum(audio_seconds) (the ratio of sums, not the mean of ratios).
"""
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from espnet_dynenc.recipe.tables import c_sorted, read_lines, write_lines

LINE_FILES = ("text", "token", "token_int", "score")
STATS_FILE = "decode_stats.yaml"
SUMMED = ("num_utterances", "audio_seconds", "decode_seconds")
SHARED = ("parameters", "flops_per_second")


def sizes_in(job_dir: Path) -> List[int]:
    """Subnet sizes a job wrote: its sub-directories named by an integer."""
    if not job_dir.is_dir():
        raise FileNotFoundError(f"{job_dir}: decoding job wrote no output directory")
    return sorted(int(p.name) for p in job_dir.iterdir() if p.is_dir() and p.name.isdigit())


def common_sizes(job_dirs: Sequence[Path]) -> List[int]:
    """Sizes every job decoded; a size missing from some job is an error naming the job."""
    per_job = {job: sizes_in(job) for job in job_dirs}
    first = per_job[job_dirs[0]]
    if not first:
        raise FileNotFoundError(f"{job_dirs[0]}: no <size>/ output directories")
    for job, sizes in per_job.items():
        if sizes != first:
            raise ValueError(f"{job}: decoded sizes {sizes}, but {job_dirs[0]} decoded {first}")
    return first


def merge_lines(job_dirs: Sequence[Path], size: int, name: str, out_file: Path) -> int:
    """Concatenate ``<job>/<size>/<name>`` sorted by utterance id; return the line count."""
    lines: Dict[str, str] = {}
    for job in job_dirs:
        path = job / str(size) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing decoder output")
        for line in read_lines(path):
            lines[line.split(maxsplit=1)[0]] = line
    write_lines(out_file, (lines[k] for k in c_sorted(lines)))
    return len(lines)


def merge_stats(job_dirs: Sequence[Path], size: int) -> dict:
    """One decode_stats dict from the jobs' (totals summed, RTF recomputed)."""
    jobs = []
    for job in job_dirs:
        path = job / str(size) / STATS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing decoder output")
        jobs.append(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    merged = {"subnet": int(size), "num_jobs": len(jobs)}
    for key in SUMMED:
        merged[key] = sum(_number(job, key, path) for job, path in zip(jobs, job_dirs))
    merged["num_utterances"] = int(merged["num_utterances"])
    merged["rtf"] = merged["decode_seconds"] / merged["audio_seconds"] if merged["audio_seconds"] else 0.0
    for key in SHARED:
        # a property of the size, not of the data: every job reports the same value
        merged[key] = jobs[0].get(key)
    merged["parameters"] = int(merged["parameters"]) if merged["parameters"] is not None else None
    return merged


def merge_jobs(job_dirs: Sequence[Path], out_dir: Path) -> List[int]:
    """Merge every size; return the sizes."""
    sizes = common_sizes(job_dirs)
    for size in sizes:
        target = out_dir / str(size)
        for name in LINE_FILES:
            merge_lines(job_dirs, size, name, target / name)
        stats = merge_stats(job_dirs, size)
        write_lines(target / STATS_FILE, yaml.safe_dump(stats, sort_keys=False).splitlines())
    return sizes


def _number(job: dict, key: str, where: Path) -> float:
    if key not in job:
        raise KeyError(f"{where}: {STATS_FILE} has no '{key}'")
    return float(job[key])
