"""Stage 13: one Markdown table comparing the subnet sizes of a model.

One row per size: parameters, FLOPs per second of audio, WER and CER per test set (the
Err column of sclite's ``| Sum/Avg |`` line), and the real-time factor of decoding per
test set (decode seconds / audio seconds over all decoding jobs of that set).
"""
import datetime
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import List, Optional, Sequence

import yaml

from espnet_dynenc.decode.outputs import STATS_FILE, DecodeOutput, finished_sizes

SUM_AVG = re.compile(r"^\s*\|\s*Sum/Avg\s*\|([^|]*)\|([^|]*)\|")
MISSING = "n/a"


@dataclass(frozen=True)
class SummaryLine:
    """The numbers of sclite's ``| Sum/Avg |`` line."""

    sentences: int
    words: int
    correct: float
    substitutions: float
    deletions: float
    insertions: float
    errors: float
    sentence_errors: float


def read_sum_avg(result_txt: Path) -> SummaryLine:
    """The first ``| Sum/Avg |`` line of a result.txt (the percentage table)."""
    with open(result_txt, encoding="utf-8") as f:
        for line in f:
            match = SUM_AVG.match(line)
            if match:
                sentences, words = match.group(1).split()
                rates = [float(v) for v in match.group(2).split()]
                return SummaryLine(int(sentences), int(words), *rates)
    raise ValueError(f"{result_txt}: no '| Sum/Avg |' line")


def sizes_decoded(decode_dir: Path, test_sets: Sequence[str]) -> List[int]:
    """Every size decoded for any test set, ascending."""
    return finished_sizes(decode_dir / test_set for test_set in test_sets)


def human(value: Optional[float]) -> str:
    """3 significant digits with k/M/G/T: 25300 -> '25.3k'."""
    if value is None:
        return MISSING
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def load_stats(folder: Path) -> Optional[dict]:
    path = folder / STATS_FILE
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def error_rate(folder: Path, kind: str) -> str:
    path = folder / f"score_{kind}" / "result.txt"
    return f"{read_sum_avg(path).errors:.1f}" if path.is_file() else MISSING


def size_row(decode_dir: Path, test_sets: Sequence[str], size: int) -> List[str]:
    folders = [DecodeOutput.whole(size).folder(decode_dir / t) for t in test_sets]
    stats = [load_stats(f) for f in folders]
    known = next((s for s in stats if s), {})
    row = [str(size), human(known.get("parameters")), human(known.get("flops_per_second"))]
    row += [error_rate(f, "wer") for f in folders]
    row += [error_rate(f, "cer") for f in folders]
    row += [f"{s['rtf']:.4f}" if s and "rtf" in s else MISSING for s in stats]
    row.append(f"`{known['checkpoint']}`" if "checkpoint" in known else MISSING)
    return row


def markdown_table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def results_table(decode_dir: Path, test_sets: Sequence[str], sizes: Optional[Sequence[int]] = None) -> List[str]:
    sizes = list(sizes) if sizes else sizes_decoded(decode_dir, test_sets)
    header = ["size", "parameters", "FLOPs / s of audio"]
    header += [f"WER {t} (%)" for t in test_sets] + [f"CER {t} (%)" for t in test_sets]
    header += [f"RTF {t}" for t in test_sets] + ["checkpoint"]
    return markdown_table(header, [size_row(decode_dir, test_sets, s) for s in sizes])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return MISSING


def results_markdown(
    decode_dir: Path,
    test_sets: Sequence[str],
    sizes: Optional[Sequence[int]],
    model_file: str,
    device: str,
    extra_sections: Sequence[str] = (),
    decoding: str = "greedy CTC",
) -> str:
    """RESULTS.md: how the numbers were made (``decoding`` says how the search went), the
    table of sizes, then ``extra_sections`` lines."""
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        "<!-- Written by asr.sh stage 13 from the score_*/result.txt and decode_stats.yaml files. -->",
        "# RESULTS",
        "## Environment",
        f"- date: `{when}`",
        f"- python: `{platform.python_version()}`, espnet: `{_version('espnet')}`, torch: `{_version('torch')}`",
        "",
        f"## {decode_dir.parent.name}",
        f"- model: `{model_file}`",
        f"- decoding: `{decode_dir}` ({decoding}, {device})",
        "- WER / CER: Err of sclite's `Sum/Avg` line in `<test_set>/<size>/score_{wer,cer}/result.txt`",
        "- RTF: per test set, decoding seconds / audio seconds summed over all decoding jobs",
        "- parameters, FLOPs per second of audio: as the decoder reports them for each size",
        "- checkpoint: the file each size was decoded from (its own average of best epochs where the "
        "training config's `best_model_criterion` made one and asr.sh's `--size_checkpoints` is true)",
        "",
    ]
    lines += results_table(decode_dir, test_sets, sizes)
    lines += extra_sections
    return "\n".join(lines) + "\n"


def parse_sizes(text: str) -> List[int]:
    try:
        return [int(tok) for tok in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"sizes '{text}' are not whole numbers") from None

