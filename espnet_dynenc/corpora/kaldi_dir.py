"""Write and check whole Kaldi-style data directories (``wav.scp``, ``text``, ``utt2spk``, ...).

ESPnet's recipes exchange data through these directories: one line per utterance,
``<utt-id> <value>``, all files sorted by utterance id in C-locale order, speaker ids
prefixing utterance ids so that sorting by utterance also groups speakers.

This module knows what belongs in a directory and how its files must agree; reading,
sorting, inverting and atomically writing the single ``<key> <value>`` files is left to
``espnet_dynenc.recipe.tables``, which the recipe driver's stages use too, so that the
corpus preparation and the recipe write byte-identical tables.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.recipe.tables import c_sorted, read_table, spk2utt_of, write_table

DONE_MARKER = ".done"


@dataclass(frozen=True)
class Segment:
    """A time span of a recording, in seconds."""

    recording_id: str
    start: float
    end: float


@dataclass(frozen=True)
class Utterance:
    """One line in every file of a data directory.

    ``audio`` is what goes into ``wav.scp``: a file path, or a command ending in ``|``.
    With ``segment`` set, ``audio`` belongs to the recording, and the directory gets a
    ``segments`` file.
    """

    utt_id: str
    speaker: str
    audio: str
    text: str
    segment: Optional[Segment] = None


def write_data_dir(
    data_dir: os.PathLike,
    utterances: Iterable[Utterance],
    extra_tables: Optional[Dict[str, Dict[str, str]]] = None,
) -> int:
    """Write ``utterances`` as a data directory; return the number of utterances.

    Each file is written under a temporary name and renamed when whole, so an
    interrupted call never leaves a file that looks complete. ``extra_tables`` adds
    ``<key> <value>`` files such as ``spk2gender`` or ``utt2dur``.
    """
    utts = sorted(utterances, key=lambda u: u.utt_id.encode("utf-8"))
    _check_ids(data_dir, utts)
    text = {utt.utt_id: utt.text for utt in utts}
    utt2spk = {utt.utt_id: utt.speaker for utt in utts}
    recordings: Dict[str, str] = {}
    segments: Dict[str, str] = {}
    for utt in utts:
        if utt.segment is None:
            recordings[utt.utt_id] = utt.audio
        else:
            seg = utt.segment
            segments[utt.utt_id] = f"{seg.recording_id} {seg.start:.2f} {seg.end:.2f}"
            recordings[seg.recording_id] = utt.audio
    tables = {"text": text, "utt2spk": utt2spk, "wav.scp": recordings, "spk2utt": spk2utt_of(utt2spk)}
    out = Path(data_dir)
    if segments:
        tables["segments"] = segments
    else:
        # a segments file left by an earlier run would re-cut the new recordings
        (out / "segments").unlink(missing_ok=True)
    tables.update(extra_tables or {})
    for name, table in tables.items():
        write_table(out / name, table)
    return len(utts)


def validate_data_dir(data_dir: os.PathLike) -> int:
    """Check that a data directory is complete and consistent; return its utterance count."""
    d = Path(data_dir)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d}: missing '{name}'")
    text = read_table(d / "text")
    utt2spk = read_table(d / "utt2spk")
    if list(text) != list(utt2spk):
        raise ValueError(f"{d}: 'text' and 'utt2spk' list different utterances or orders")
    if list(text) != c_sorted(text):
        raise ValueError(f"{d}/text: utterance ids are not sorted")
    recordings = read_table(d / "wav.scp")
    if (d / "segments").is_file():
        for utt, value in read_table(d / "segments").items():
            rec = value.split()[0]
            if rec not in recordings:
                raise ValueError(f"{d}/segments: utterance '{utt}' names unknown recording '{rec}'")
    elif list(recordings) != list(text):
        raise ValueError(f"{d}: 'wav.scp' and 'text' list different utterances")
    return len(text)


def _check_ids(data_dir: os.PathLike, utts: List[Utterance]) -> None:
    """Refuse ids that would make the tables disagree: repeats, spaces, a foreign prefix."""
    seen = set()
    for utt in utts:
        if utt.utt_id in seen:
            raise ValueError(f"{data_dir}: duplicate utterance id '{utt.utt_id}'")
        if " " in utt.utt_id or " " in utt.speaker:
            raise ValueError(f"{data_dir}: ids may not contain spaces: '{utt.utt_id}'")
        seen.add(utt.utt_id)
    for utt in utts:
        if not utt.utt_id.startswith(utt.speaker):
            raise ValueError(
                f"{data_dir}: utterance id '{utt.utt_id}' must start with its speaker id "
                f"'{utt.speaker}' (Kaldi sorts utt2spk and spk2utt consistently only then)"
            )


def write_finished_data_dir(
    data_dir: os.PathLike,
    utterances: Iterable[Utterance],
    extra_tables: Optional[Dict[str, Dict[str, str]]] = None,
) -> int:
    """Write and validate a data directory, then mark it finished; return its utterance count.

    The ``.done`` marker is removed before anything is written and created only after
    ``validate_data_dir`` passed, so a later stage can trust a directory that has one.
    ``extra_tables`` adds ``<key> <value>`` files such as ``spk2gender``.
    """
    out = Path(data_dir)
    marker = out / DONE_MARKER
    marker.unlink(missing_ok=True)
    count = write_data_dir(out, utterances, extra_tables)
    validate_data_dir(out)
    write_text_atomically(marker, f"{count}\n")
    return count
