"""The two espeak-ng backends that turn a planned utterance into samples.

``loader``
    the shared library and voice data bundled by the PyPI package ``espeakng-loader``,
    driven through ctypes. espeak-ng keeps synthesis state (flutter phase, noise
    generator, echo buffer) in static variables that survive ``espeak_Terminate``, so the
    library is unloaded and loaded afresh for every utterance; that costs about 5 ms and
    makes each utterance independent of the ones synthesized before it in that process.
``command``
    the ``espeak-ng`` program (Debian package ``espeak-ng``), one process per utterance.

``auto`` takes ``loader`` when the package is installed and ``command`` otherwise. The two
carry different espeak-ng releases, so their audio differs; the backend and its version
are recorded with the corpus.
"""
import _ctypes
import ctypes
import multiprocessing.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Protocol, Sequence, Tuple

import numpy as np

BACKENDS = ("auto", "loader", "command")
SYNTH_VOLUME = 50           # espeak-ng amplitude (default 100): loud variants clip at 100


class EspeakError(RuntimeError):
    """espeak-ng is missing, refused a voice, or failed to synthesize."""


class Backend(Protocol):
    """What the corpus writer needs from an espeak-ng backend."""

    name: str
    version: str
    data_path: Path  # the espeak-ng-data folder

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, noise_seed: int) -> Tuple[np.ndarray, int]:
        ...

    def close(self) -> None:
        ...


# espeak_lib.h: AUDIO_OUTPUT_SYNCHRONOUS, espeakINITIALIZE_DONT_EXIT, parameter ids,
# POS_CHARACTER and espeakCHARS_UTF8
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_LIBC = ctypes.CDLL(None)
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class LoaderBackend:
    """libespeak-ng from the ``espeakng-loader`` wheel, through ctypes.

    The library is copied to a private temporary file first, so that unloading it after
    each utterance really drops its static state even if something else in the process
    has the packaged copy open.
    """

    name = "loader"

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise EspeakError("backend 'loader' needs the Python package espeakng-loader "
                              "(pip install espeakng-loader)") from err
        self.data_path = Path(espeakng_loader.get_data_path())
        self._private_dir = tempfile.mkdtemp(prefix="mini_synth_espeak_")
        self._library = os.path.join(self._private_dir, "libespeak-ng.so")
        # pool workers leave through multiprocessing's exit hook, which skips atexit
        multiprocessing.util.Finalize(self, shutil.rmtree, args=(self._private_dir, True), exitpriority=10)
        self._chunks: List[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)
        try:
            shutil.copyfile(espeakng_loader.get_library_path(), self._library)
            library_version = self._library_version()
        except OSError as err:
            self.close()
            raise EspeakError(f"backend 'loader': cannot load libespeak-ng from espeakng-loader: {err}") from err
        self.version = f"espeakng-loader {_package_version('espeakng-loader')}, espeak-ng {library_version}"

    def _library_version(self) -> str:
        lib = ctypes.CDLL(self._library)
        try:
            lib.espeak_Info.restype = ctypes.c_char_p
            lib.espeak_Info.argtypes = [ctypes.c_void_p]
            return lib.espeak_Info(None).decode()
        finally:
            _ctypes.dlclose(lib._handle)

    def _collect(self, samples, count, _events) -> int:
        if count > 0 and samples:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0  # 0 = go on synthesizing

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, noise_seed: int) -> Tuple[np.ndarray, int]:
        """Return int16 samples and their sample rate."""
        lib = ctypes.CDLL(self._library)
        try:
            return self._synthesize_with(lib, text, voice, rate, pitch, noise_seed)
        finally:
            lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)

    def _synthesize_with(self, lib: ctypes.CDLL, text: str, voice: str, rate: int, pitch: int,
                         noise_seed: int) -> Tuple[np.ndarray, int]:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate_hz = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(),
                                        _INITIALIZE_DONT_EXIT)
        if rate_hz <= 0:
            raise EspeakError(f"espeak_Initialize failed with data at {self.data_path}")
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng ({self.name}) has no voice '{voice}'")
        lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        lib.espeak_SetParameter(_PARAM_VOLUME, SYNTH_VOLUME, 0)
        # breathy and Klatt variants mix in noise from libc rand() and espeak-ng's own
        # generator; both outlive the library, so both are seeded for every utterance
        _LIBC.srand(noise_seed)
        if hasattr(lib, "espeak_ng_SetRandSeed"):  # new in espeak-ng 1.52
            lib.espeak_ng_SetRandSeed(ctypes.c_long(noise_seed))
        self._chunks = []
        encoded = text.encode() + b"\0"
        status = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0 or lib.espeak_Synchronize() != 0:
            raise EspeakError(f"espeak-ng ({self.name}) failed on '{text}' with voice '{voice}'")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return samples, rate_hz

    def close(self) -> None:
        shutil.rmtree(self._private_dir, ignore_errors=True)


class CommandBackend:
    """The ``espeak-ng`` program, one process per utterance (fresh state every time)."""

    name = "command"

    def __init__(self, command: str = "espeak-ng") -> None:
        found = shutil.which(command)
        if found is None:
            raise EspeakError(f"backend 'command': '{command}' not found on PATH "
                              "(apt-get install espeak-ng, or pass --espeak_command)")
        self.command = found
        info = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout
        match = re.search(r"text-to-speech:\s*(\S+)\s+Data at:\s*(.+)", info)
        if match is None:
            raise EspeakError(f"cannot read the version and data folder from '{found} --version': {info!r}")
        self.version, self.data_path = match.group(1), Path(match.group(2).strip())

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, noise_seed: int) -> Tuple[np.ndarray, int]:
        """Return int16 samples and their sample rate.

        ``noise_seed`` is unused: a new process starts libc rand() from the same state,
        so the program's output is already reproducible.
        """
        args = [self.command, "-v", voice, "-s", str(rate), "-p", str(pitch), "-a", str(SYNTH_VOLUME),
                "--stdout", text]
        result = subprocess.run(args, capture_output=True)
        if result.returncode != 0 or len(result.stdout) <= 44:
            raise EspeakError(f"'{' '.join(args)}' failed (exit {result.returncode}): "
                              f"{result.stderr.decode(errors='replace').strip()}")
        return _parse_streamed_wav(result.stdout)

    def close(self) -> None:
        pass


def _parse_streamed_wav(data: bytes) -> Tuple[np.ndarray, int]:
    """Read 16-bit mono PCM from espeak-ng's ``--stdout`` WAV.

    Written to a pipe, its RIFF and data sizes are placeholders, so the data runs to the
    end of the bytes rather than to the declared size.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError("espeak-ng --stdout did not produce a WAV stream")
    pos = 12
    sample_rate = None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk_id == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            sample_rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
            if channels != 1 or bits != 16:
                raise EspeakError(f"espeak-ng wrote {channels} channel(s) of {bits}-bit audio, expected mono 16-bit")
        elif chunk_id == b"data":
            if sample_rate is None:
                raise EspeakError("espeak-ng WAV stream has no 'fmt ' chunk before its data")
            payload = data[pos + 8:]
            return np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2").astype(np.int16), sample_rate
        pos += 8 + size
    raise EspeakError("espeak-ng WAV stream has no 'data' chunk")


def _package_version(distribution: str) -> str:
    from importlib.metadata import version
    return version(distribution)


def make_backend(name: str, espeak_command: str = "espeak-ng") -> Backend:
    """Build the backend called ``name`` (one of ``BACKENDS``)."""
    if name == "loader":
        return LoaderBackend()
    if name == "command":
        return CommandBackend(espeak_command)
    if name == "auto":
        try:
            return LoaderBackend()
        except EspeakError as loader_error:
            try:
                return CommandBackend(espeak_command)
            except EspeakError as command_error:
                raise EspeakError(f"no espeak-ng backend works: {loader_error}; {command_error}") from None
    raise ValueError(f"--backend: unknown backend '{name}'; choose from {', '.join(BACKENDS)}")


def check_variants(backend: Backend, variants: Sequence[str]) -> None:
    """Fail early on a variant this espeak-ng lacks: it would silently use the plain voice."""
    variant_dir = backend.data_path / "voices" / "!v"
    missing = [v for v in variants if not (variant_dir / v).is_file()]
    if missing:
        raise EspeakError(f"--variants: espeak-ng ({backend.name} {backend.version}) has no variant(s) "
                          f"{missing} in {variant_dir}")
