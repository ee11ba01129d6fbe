"""Speed perturbation: audio played faster or slower, pitch moving with it (sox's ``speed``).

A factor f makes an utterance 1/f times as long. ``perturb_data_dir`` writes the
perturbed copy of a data directory the Kaldi way: ids of every factor other than 1.0 get
the prefix ``sp<f>-`` (utterances, speakers and recordings), segment times are divided by
f, and each ``wav.scp`` entry becomes a pipe through ``python -m espnet_dynenc.bin.speed_perturb``
that reads the original entry and writes the perturbed wav to stdout. Any Kaldi tool can
read that pipe; the recipe's formatter (stage 3) recognises it and does the same
computation in-process instead of starting one Python per utterance.
"""
import shlex
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet_dynenc.recipe.tables import read_table, spk2utt_of, write_table

MODULE = "espnet_dynenc.bin.speed_perturb"


def perturb_samples(samples: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Resample as if recorded at ``rate * factor`` and played at ``rate`` (int16 in and out)."""
    import soxr  # imported here: only stage 2/3 work needs it

    if abs(factor - 1.0) < 1e-9:
        return samples
    return soxr.resample(samples, rate * factor, rate)


def pipe_command(python: str, factor: str, source: str) -> str:
    """The wav.scp value that reads ``source`` (a path or a pipe) perturbed by ``factor``."""
    return f"{shlex.quote(python)} -m {MODULE} --factor {factor} --input {shlex.quote(source)} |"


def parse_pipe_command(entry: str) -> Optional[Tuple[float, str]]:
    """(factor, source) if ``entry`` is exactly what ``pipe_command`` writes, else None."""
    entry = entry.strip()
    if not entry.endswith("|"):
        return None
    try:
        argv = shlex.split(entry[:-1])
    except ValueError:
        return None
    if len(argv) != 7 or argv[1:3] != ["-m", MODULE] or argv[3] != "--factor" or argv[5] != "--input":
        return None
    try:
        return float(argv[4]), argv[6]
    except ValueError:
        return None


def parse_factors(text: str) -> List[str]:
    """'0.9 1.0 1.1' -> ['0.9', '1.0', '1.1']; each must be a positive number, none twice."""
    factors = text.split()
    for factor in factors:
        try:
            ok = float(factor) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"speed perturbation factor '{factor}' is not a positive number")
    if len({float(f) for f in factors}) != len(factors):
        raise ValueError(f"speed perturbation factors '{text}' name a factor twice")
    return factors


def is_identity(factor: str) -> bool:
    return abs(float(factor) - 1.0) < 1e-9


def perturb_data_dir(src: Path, dst: Path, factors: Sequence[str], python: str) -> int:
    """Write ``dst`` holding every utterance of ``src`` once per factor; return the count."""
    wav_scp = read_table(src / "wav.scp")
    text = read_table(src / "text")
    utt2spk = read_table(src / "utt2spk")
    segments = read_table(src / "segments") if (src / "segments").is_file() else None
    out: Dict[str, Dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2spk": {}, "segments": {}}
    for factor in factors:
        prefix = "" if is_identity(factor) else f"sp{factor}-"
        for rec, entry in wav_scp.items():
            value = entry if not prefix else pipe_command(python, factor, entry)
            _add(out["wav.scp"], prefix + rec, value, "wav.scp")
        for utt, words in text.items():
            _add(out["text"], prefix + utt, words, "text")
            _add(out["utt2spk"], prefix + utt, prefix + utt2spk[utt], "utt2spk")
        if segments is not None:
            for utt, value in segments.items():
                _add(out["segments"], prefix + utt, _scaled_segment(value, prefix, float(factor)), "segments")
    for name in ("wav.scp", "text", "utt2spk"):
        write_table(dst / name, out[name])
    write_table(dst / "spk2utt", spk2utt_of(out["utt2spk"]))
    if segments is not None:
        write_table(dst / "segments", out["segments"])
    return len(out["text"])


def _scaled_segment(value: str, prefix: str, factor: float) -> str:
    """'<rec> <start> <end>' of a perturbed recording: times shrink or grow by 1/factor."""
    rec, start, end = value.split()[:3]
    return f"{prefix}{rec} {float(start) / factor:.4f} {float(end) / factor:.4f}"


def _add(table: Dict[str, str], key: str, value: str, name: str) -> None:
    if key in table:
        raise ValueError(f"{name}: id '{key}' occurs twice after speed perturbation")
    table[key] = value
