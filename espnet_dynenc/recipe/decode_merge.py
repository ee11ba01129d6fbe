"""Stage 12: merge the outputs of parallel decoding jobs, output by output.

Each job directory holds the outputs it decoded, in the layout of
``espnet_dynenc.decode.outputs`` (``<size>/`` and, when pruning was decoded,
``pruned/<strategy>/<depth>/``, each with ``text``, ``token``, ``token_int``, ``score`` and
``decode_stats.yaml``). Each merged output directory gets the line files concatenated and
sorted by utterance id, and one ``decode_stats.yaml`` whose totals add up the jobs' and
whose real-time factor is sum(decode_seconds) / sum(audio_seconds) (the ratio of sums, not
the mean of ratios).
"""
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from espnet_dynenc.decode.outputs import LINE_FILES, STATS_FILE, finished_outputs
from espnet_dynenc.recipe.tables import c_sorted, read_lines, write_lines

SUMMED = ("num_utterances", "audio_seconds", "decode_seconds")


def outputs_in(job_dir: Path) -> List[str]:
    """What a job (or a merged data set) holds: its finished outputs' folders, relative to
    it (``16``, ``pruned/top/4``), sizes by number first."""
    if not job_dir.is_dir():
        raise FileNotFoundError(f"{job_dir}: decoding job wrote no output directory")
    return [output.relative_dir for output in finished_outputs(job_dir)]


def common_outputs(job_dirs: Sequence[Path]) -> List[str]:
    """Outputs every job wrote; one missing from some job is an error naming the job."""
    per_job = {job: outputs_in(job) for job in job_dirs}
    first = per_job[job_dirs[0]]
    if not first:
        raise FileNotFoundError(f"{job_dirs[0]}: no finished output (<size>/{STATS_FILE})")
    for job, outputs in per_job.items():
        if outputs != first:
            raise ValueError(f"{job}: decoded {outputs}, but {job_dirs[0]} decoded {first}")
    return first


def merge_lines(job_dirs: Sequence[Path], output: str, name: str, out_file: Path) -> int:
    """Concatenate ``<job>/<output>/<name>`` sorted by utterance id; return the line count."""
    lines: Dict[str, str] = {}
    for job in job_dirs:
        path = job / output / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing decoder output")
        for line in read_lines(path):
            lines[line.split(maxsplit=1)[0]] = line
    write_lines(out_file, (lines[k] for k in c_sorted(lines)))
    return len(lines)


def merge_stats(job_dirs: Sequence[Path], output: str) -> dict:
    """One decode_stats dict from the jobs' (totals summed, RTF recomputed, the rest from job 1)."""
    jobs = []
    for job in job_dirs:
        path = job / output / STATS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing decoder output")
        jobs.append(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    # subnet, skip_blocks, parameters, FLOPs...: properties of the target, equal in every job
    merged = {key: value for key, value in jobs[0].items() if key not in SUMMED + ("rtf",)}
    merged["num_jobs"] = len(jobs)
    for key in SUMMED:
        merged[key] = sum(_number(job, key, path / output) for job, path in zip(jobs, job_dirs))
    merged["num_utterances"] = int(merged["num_utterances"])
    merged["rtf"] = merged["decode_seconds"] / merged["audio_seconds"] if merged["audio_seconds"] else 0.0
    return merged


def merge_jobs(job_dirs: Sequence[Path], out_dir: Path) -> List[str]:
    """Merge every output directory of the jobs; return their relative names."""
    outputs = common_outputs(job_dirs)
    for output in outputs:
        target = out_dir / output
        for name in LINE_FILES:
            merge_lines(job_dirs, output, name, target / name)
        stats = merge_stats(job_dirs, output)
        write_lines(target / STATS_FILE, yaml.safe_dump(stats, sort_keys=False).splitlines())
    return outputs


def _number(job: dict, key: str, where: Path) -> float:
    if key not in job:
        raise KeyError(f"{where}: {STATS_FILE} has no '{key}'")
    return float(job[key])
