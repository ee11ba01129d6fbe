"""From espeak-ng's samples to the corpus's WAV files: 16 kHz mono 16-bit PCM at a set level."""
import math
import wave
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np
import soxr

from espnet_dynenc.atomic_files import replace_atomically

SAMPLE_RATE = 16000


def to_16k(samples: np.ndarray, rate: int, level_dbfs: float) -> np.ndarray:
    """Resample int16 ``samples`` to 16 kHz, scale to an RMS level, return int16.

    The level is set in floating point after resampling, and lowered where it would push
    a peak past 0.99 of full scale, so no sample clips.
    """
    return set_level(resample_16k(samples, rate), level_dbfs)


def resample_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 ``samples`` at ``rate`` as float64 in [-1, 1] at 16 kHz."""
    audio = samples.astype(np.float64) / 32768.0
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    return audio


def rms(audio: np.ndarray) -> float:
    return math.sqrt(float(np.mean(audio ** 2))) if audio.size else 0.0


def set_level(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    """Float audio scaled to an RMS level (lowered where a peak would pass 0.99), as int16."""
    level = rms(audio)
    if level > 0:
        gain = min(10 ** (level_dbfs / 20) / level, 0.99 / float(np.max(np.abs(audio))))
        audio = audio * gain
    return np.round(audio * 32767).astype(np.int16)


def mix_babble(speech: np.ndarray, talkers: Sequence[Tuple[np.ndarray, float]], snr_db: float) -> np.ndarray:
    """``speech`` plus the talkers' audio (each cut in at its start fraction and repeated to
    the speech's length), summed and scaled to ``snr_db`` below the speech's RMS."""
    babble = np.zeros_like(speech)
    for audio, start in talkers:
        if audio.size == 0:
            continue
        offset = int(start * audio.size)
        repeats = -(-(offset + speech.size) // audio.size)
        babble += np.tile(audio, repeats)[offset:offset + speech.size]
    level = rms(babble)
    if level == 0:
        return speech
    return speech + babble * (rms(speech) / level) * 10 ** (-snr_db / 20)


def write_wav_atomically(path: Path, samples: np.ndarray) -> None:
    """Write 16 kHz mono 16-bit PCM, whole or not at all (``replace_atomically``).

    The standard library's writer is used because libsndfile syncs every file to disk on
    close, which would take a third of the corpus's generation time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: _write_pcm16(tmp, samples))


def _write_pcm16(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.astype("<i2").tobytes())
