"""Read ``.trn`` transcripts: ``<tokens> (<speaker>-<utterance>)`` per line.

This is the format ESPnet writes for sclite (``score_wer/ref.trn``). Like ``sclite -i rm``
without ``-s``, lines are compared without regard to ASCII case (they are lower-cased on
reading) and the speaker is the part of the id before the first ``-`` (or ``_`` when there
is no ``-``). Words in parentheses are plain words (as in sclite without ``-D``);
sclite's alternations ``{ a / b }`` are refused.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from espnet_dynenc.scoring.wer import ascii_lower


@dataclass(frozen=True)
class TrnEntry:
    """One utterance; ``utt_id`` keeps the parentheses, as sclite prints it."""

    utt_id: str
    speaker: str
    tokens: Tuple[str, ...]


def parse_trn_line(line: str, where: str) -> TrnEntry:
    """Split one line into tokens and id; ``where`` (file:line) goes into error messages."""
    line = ascii_lower(line.rstrip("\n"))
    left, right = line.rfind("("), line.rfind(")")
    if left < 0 or right < left:
        raise ValueError(f"{where}: no '(<speaker>-<utterance>)' id at the end of the line")
    utt_id = line[left : right + 1]
    tokens = tuple(line[:left].split())
    if any(token.startswith("{") or token.endswith("}") for token in tokens):
        # sclite reads "{ a / b }" as alternative words; counting them as plain words would
        # give other numbers, so refuse rather than disagree silently
        raise ValueError(f"{where}: alternations '{{ a / b }}' are not supported here; score with sclite (sctk)")
    return TrnEntry(utt_id, speaker_of(utt_id, where), tokens)


def speaker_of(utt_id: str, where: str) -> str:
    """Speaker of an ``(spk-utt)`` id: text up to the first '-', else up to the first '_'."""
    inner = utt_id[1:]
    for separator in ("-", "_"):
        cut = inner.find(separator)
        if cut >= 0:
            return inner[:cut]
    raise ValueError(f"{where}: id {utt_id} has no '-' or '_' separating speaker and utterance")


def read_trn(path: Path) -> List[TrnEntry]:
    """All entries in file order; blank lines and ';;' comment lines are skipped."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith(";;"):
                continue
            entries.append(parse_trn_line(line, f"{path}:{lineno}"))
    return entries


def index_by_id(entries: List[TrnEntry], path: Path) -> Dict[str, TrnEntry]:
    """Map id -> entry; the same id twice with different text is an error."""
    table: Dict[str, TrnEntry] = {}
    for entry in entries:
        known = table.get(entry.utt_id)
        if known is not None and known.tokens != entry.tokens:
            raise ValueError(f"{path}: two different transcripts for id {entry.utt_id}")
        table[entry.utt_id] = entry
    return table
