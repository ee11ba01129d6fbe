"""Write and check Kaldi-style data directories (``wav.scp``, ``text``, ``utt2spk``, ...).

ESPnet's recipes exchange data through these directories: one line per utterance,
``<utt-id> <value>``, all files sorted by utterance id in C-locale order, speaker ids
prefixing utterance ids so that sorting by utterance also groups speakers.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from espnet_dynenc.recipe.tables import read_table  # noqa: F401  (re-exported for corpus code)


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


def write_data_dir(data_dir: os.PathLike, utterances: Iterable[Utterance]) -> int:
    """Write ``utterances`` as a data directory; return the number of utterances.

    Files are written under temporary names and renamed at the end, so an interrupted
    call never leaves a directory that looks complete.
    """
    utts = sorted(utterances, key=lambda u: u.utt_id.encode("utf-8"))
    _check_unique_ids(data_dir, utts)
    files: Dict[str, List[str]] = {"text": [], "utt2spk": []}
    recordings: Dict[str, str] = {}
    segments: List[str] = []
    for utt in utts:
        if not utt.utt_id.startswith(utt.speaker):
            raise ValueError(
                f"{data_dir}: utterance id '{utt.utt_id}' must start with its speaker id "
                f"'{utt.speaker}' (Kaldi sorts utt2spk and spk2utt consistently only then)"
            )
        files["text"].append(f"{utt.utt_id} {utt.text}".rstrip())
        files["utt2spk"].append(f"{utt.utt_id} {utt.speaker}")
        if utt.segment is None:
            recordings[utt.utt_id] = utt.audio
        else:
            seg = utt.segment
            segments.append(f"{utt.utt_id} {seg.recording_id} {seg.start:.2f} {seg.end:.2f}")
            recordings[seg.recording_id] = utt.audio
    files["wav.scp"] = [
        f"{rec} {audio}" for rec, audio in sorted(recordings.items(), key=lambda kv: kv[0].encode())
    ]
    if segments:
        files["segments"] = segments
    spk2utt: Dict[str, List[str]] = {}
    for utt in utts:
        spk2utt.setdefault(utt.speaker, []).append(utt.utt_id)
    files["spk2utt"] = [
        f"{spk} {' '.join(ids)}" for spk, ids in sorted(spk2utt.items(), key=lambda kv: kv[0].encode())
    ]
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not segments and (out / "segments").exists():
        (out / "segments").unlink()
    for name, lines in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, out / name)
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
    if list(text) != sorted(text, key=lambda k: k.encode("utf-8")):
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


def _check_unique_ids(data_dir: os.PathLike, utts: List[Utterance]) -> None:
    seen = set()
    for utt in utts:
        if utt.utt_id in seen:
            raise ValueError(f"{data_dir}: duplicate utterance id '{utt.utt_id}'")
        if " " in utt.utt_id or " " in utt.speaker:
            raise ValueError(f"{data_dir}: ids may not contain spaces: '{utt.utt_id}'")
        seen.add(utt.utt_id)


DONE_MARKER = ".done"


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
    if marker.exists():
        marker.unlink()
    count = write_data_dir(out, utterances)
    for name, table in (extra_tables or {}).items():
        lines = [f"{key} {table[key]}\n" for key in sorted(table, key=lambda k: k.encode("utf-8"))]
        tmp = out / f".{name}.tmp"
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, out / name)
    validate_data_dir(out)
    marker.write_text(f"{count}\n", encoding="utf-8")
    return count
