"""Read the audio that one ``wav.scp`` value names.

A value is a sound file path (anything libsndfile reads: wav, flac, ...), a Kaldi archive
position ``file.ark:OFFSET``, or a shell command ending in ``|`` whose stdout is a sound
file. Samples come back as int16, so 16-bit input is copied bit-exactly.
"""
import io
import re
import subprocess
from typing import Tuple

import numpy as np
import soundfile

from espnet_dynenc.recipe import speed_perturb

ARK_POSITION = re.compile(r"^.+\.ark:\d+$")


def read_entry(entry: str) -> Tuple[np.ndarray, int]:
    """(int16 samples of shape [n], sampling rate) of a wav.scp value."""
    entry = entry.strip()
    perturbed = speed_perturb.parse_pipe_command(entry)
    if perturbed is not None:
        factor, source = perturbed
        samples, rate = read_entry(source)
        return speed_perturb.perturb_samples(samples, rate, factor), rate
    if entry.endswith("|"):
        samples, rate = _read_bytes(_run_pipe(entry[:-1]), entry)
    elif ARK_POSITION.match(entry):
        samples, rate = _read_ark(entry)
    else:
        samples, rate = soundfile.read(entry, dtype="int16", always_2d=True)
    return _mono(samples, entry), int(rate)


def _run_pipe(command: str) -> bytes:
    result = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise RuntimeError(f"command exited with status {result.returncode}: {command}\n{tail}")
    if not result.stdout:
        raise RuntimeError(f"command wrote no audio: {command}")
    return result.stdout


def _read_bytes(data: bytes, entry: str) -> Tuple[np.ndarray, int]:
    try:
        return soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except RuntimeError as err:  # libsndfile reports unreadable data this way
        raise RuntimeError(f"cannot read the audio written by: {entry} ({err})") from None


def _read_ark(entry: str) -> Tuple[np.ndarray, int]:
    import kaldiio

    loaded = kaldiio.load_mat(entry)
    if not isinstance(loaded, tuple):
        raise RuntimeError(f"{entry}: holds a matrix, not audio")
    rate, samples = loaded
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        samples = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return samples.reshape(len(samples), -1), rate


def _mono(samples: np.ndarray, entry: str) -> np.ndarray:
    if samples.shape[1] != 1:
        raise RuntimeError(
            f"{entry}: {samples.shape[1]} channels; select one in wav.scp, "
            f"e.g. 'sox FILE -t wav - remix 1 |'"
        )
    return samples[:, 0]
