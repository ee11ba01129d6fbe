"""The runs of a comparison: the manifest run_comparison.sh writes, one :class:`Run` per line.

A run is a method, its role (what it is compared as), a seed, its experiment dir and its
training regime. Everything else in the package reads runs and never parses a manifest line
or a ``<role>@<regime>`` itself, so the rules for roles and regimes (and the errors that name
a bad line) live here once; so does the choice of which decoding of a run its sizes are read
from, since the summaries and the test-set discovery must agree on it.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from espnet_dynenc.decode.outputs import decode_dir_name, per_size_name

ROLES = ("supernet", "alone", "pruned", "dmao")
MAIN_REGIME = "1x"  # the regime of a role without "@<regime>": the comparison's own schedule
_REGIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DECODE_DIR = decode_dir_name()  # asr.sh's greedy decoding of valid.cer_ctc.ave.pth


@dataclass(frozen=True)
class Run:
    method: str
    role: str
    seed: int
    exp_dir: Path
    regime: str = MAIN_REGIME


def split_role(text: str) -> Tuple[str, str]:
    """``'supernet@2x'`` -> ``('supernet', '2x')``; a plain role is of the main regime."""
    role, at, regime = text.partition("@")
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}' (expected {', '.join(ROLES)}, optionally with @<regime>)")
    if at and not _REGIME.fullmatch(regime):
        raise ValueError(f"bad regime '{regime}' in role '{text}' (letters, digits, '.', '_', '-', e.g. 2x)")
    return role, regime or MAIN_REGIME


def role_text(run: Run) -> str:
    """The role as a manifest or plan line writes it."""
    return run.role if run.regime == MAIN_REGIME else f"{run.role}@{run.regime}"


def regime_suffix(regime: str) -> str:
    """What labels of a regime other than the main one end in, e.g. ``' (2x)'``."""
    return "" if regime == MAIN_REGIME else f" ({regime})"


def read_manifest(path: Path) -> List[Run]:
    """The runs listed by run_comparison.sh; a bad line names the file and line."""
    runs = []
    regimes: Dict[str, Tuple[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        try:
            role, regime = split_role(fields[1]) if len(fields) == 4 else ("", "")
        except ValueError:
            role = ""
        if not role or not fields[2].lstrip("-").isdigit():
            raise ValueError(f"{path}:{number}: expected '<method> <role: {'|'.join(ROLES)}>[@<regime>] <seed> "
                             f"<exp dir>', got '{line}'")
        seen, first = regimes.setdefault(fields[0], (regime, number))
        if seen != regime:
            raise ValueError(f"{path}:{number}: method {fields[0]} is of regime {regime} here but of {seen} on line "
                             f"{first}: give the runs of another regime their own method name (e.g. "
                             f"{fields[0]}_{regime})")
        runs.append(Run(fields[0], role, int(fields[2]), Path(fields[3]), regime))
    if not runs:
        raise ValueError(f"{path}: no runs listed")
    return runs


def primary_decode_dir(run: Run, decode_dir: str = DECODE_DIR) -> str:
    """The decoding a run's sizes are read from: the one with each size's own checkpoint
    (``<decode_dir>_per_size``) when asr.sh made it, else ``decode_dir``."""
    per_size = per_size_name(decode_dir)
    return per_size if (run.exp_dir / per_size).is_dir() else decode_dir
