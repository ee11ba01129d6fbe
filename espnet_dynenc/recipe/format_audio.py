"""Stage 3: turn every utterance of a data directory into its own 16-bit audio file.

ESPnet's training data loader reads plain sound files only: no pipes, no ``segments``.
This writes one file per utterance (cut from its recording when ``segments`` exists,
resampled to the target rate when it differs), plus the lines of the new ``wav.scp`` and
``utt2num_samples``. One call handles one shard of utterance ids, so the recipe can run
shards as parallel jobs.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np
import soundfile

from espnet_dynenc.recipe.audio_source import read_entry
from espnet_dynenc.recipe.tables import read_lines, read_table, write_lines

FORMATS = {"wav": "WAV", "flac": "FLAC"}


@dataclass(frozen=True)
class UtteranceSource:
    """Where an utterance's samples come from; ``start``/``end`` in seconds, or None."""

    utt_id: str
    recording_id: str
    entry: str
    start: Optional[float] = None
    end: Optional[float] = None


def parse_rate(text: str) -> int:
    """'16k' -> 16000, '22.05k' -> 22050, '8000' -> 8000."""
    value = text.strip().lower()
    scale = 1000 if value.endswith("k") else 1
    try:
        rate = float(value[:-1] if scale == 1000 else value) * scale
    except ValueError:
        raise ValueError(f"sampling rate '{text}' is not a number like 16k or 16000") from None
    if rate <= 0 or rate != int(rate):
        raise ValueError(f"sampling rate '{text}' must be a positive whole number of Hz")
    return int(rate)


def utterance_sources(wav_scp: Path, segments: Optional[Path], keys: List[str]) -> List[UtteranceSource]:
    """The sources of ``keys``; an id missing from wav.scp (or segments) is an error."""
    recordings = read_table(wav_scp)
    spans = read_table(segments) if segments else None
    sources = []
    for utt in keys:
        if spans is None:
            if utt not in recordings:
                raise KeyError(f"{wav_scp}: no entry for utterance '{utt}'")
            sources.append(UtteranceSource(utt, utt, recordings[utt]))
            continue
        if utt not in spans:
            raise KeyError(f"{segments}: no entry for utterance '{utt}'")
        rec, start, end = spans[utt].split()[:3]
        if rec not in recordings:
            raise KeyError(f"{wav_scp}: no entry for recording '{rec}' (utterance '{utt}')")
        sources.append(UtteranceSource(utt, rec, recordings[rec], float(start), float(end)))
    return sources


def cut_segment(samples: np.ndarray, rate: int, source: UtteranceSource) -> np.ndarray:
    """The samples between ``start`` and ``end``; an end past the recording is clipped."""
    if source.start is None:
        return samples
    first = int(round(source.start * rate))
    last = min(len(samples), int(round(source.end * rate)))
    if first >= last:
        raise ValueError(
            f"segment '{source.utt_id}' ({source.start}-{source.end} s) is empty or outside "
            f"recording '{source.recording_id}' ({len(samples) / rate:.2f} s)"
        )
    return samples[first:last]


def load_utterances(sources: List[UtteranceSource], fs: int) -> Iterator[Tuple[str, np.ndarray]]:
    """(utt id, int16 samples at ``fs``); a recording is read once for consecutive segments."""
    import soxr

    cached: Tuple[str, np.ndarray, int] = ("", np.zeros(0, np.int16), fs)
    for source in sources:
        if source.entry != cached[0]:
            samples, rate = read_entry(source.entry)
            cached = (source.entry, samples, rate)
        _, samples, rate = cached
        piece = cut_segment(samples, rate, source)
        if rate != fs:
            piece = soxr.resample(piece, rate, fs)
        yield source.utt_id, piece


def format_shard(
    wav_scp: Path,
    segments: Optional[Path],
    keys_file: Path,
    fs: int,
    audio_format: str,
    out_dir: Path,
    out_wav_scp: Path,
    out_num_samples: Path,
) -> int:
    """Write one audio file per utterance in ``keys_file``; return how many."""
    if audio_format not in FORMATS:
        raise ValueError(f"audio format '{audio_format}' is not one of {sorted(FORMATS)}")
    keys = [line.split()[0] for line in read_lines(keys_file)]
    sources = utterance_sources(wav_scp, segments, keys)
    out_dir.mkdir(parents=True, exist_ok=True)
    scp_lines: List[str] = []
    length_lines: List[str] = []
    step = max(1, len(sources) // 10)
    for done, (utt, samples) in enumerate(load_utterances(sources, fs), 1):
        path = out_dir / f"{utt}.{audio_format}"
        soundfile.write(path, samples, fs, subtype="PCM_16", format=FORMATS[audio_format])
        scp_lines.append(f"{utt} {path}")
        length_lines.append(f"{utt} {len(samples)}")
        if done % step == 0 or done == len(sources):
            logging.info("formatted %d/%d utterances", done, len(sources))
    write_lines(out_wav_scp, scp_lines)
    write_lines(out_num_samples, length_lines)
    return len(sources)

