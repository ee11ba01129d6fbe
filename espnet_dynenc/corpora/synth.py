"""``mini_synth``: a small English speech corpus made on the spot by espeak-ng.

Sentences come from a small home-assistant grammar ("TURN OFF THE RED LAMP IN THE
KITCHEN", "SET A TIMER FOR TWENTY FIVE MINUTES") with a closed vocabulary of about 140
words, so a small Conformer-CTC learns it within minutes on a CPU. Every utterance is
spoken by one espeak-ng voice (an English accent combined with a voice variant) at a
pitch band, speaking rate and loudness of its own. Dev and test voices are held out
from training: a *voice* is an accent+variant pair, a *speaker* is a voice at one pitch
band, and no dev or test voice is heard, at any pitch, in training.

Everything is derived from one seed: the voice split from ``Random("<seed>/voices")``,
and each utterance's sentence, speaker, rate, pitch and loudness from
``Random("<seed>/<split>/<index>")``. A run therefore does not depend on the number of
workers or on the order they finish in, and the same seed and backend give the same
bytes.

Two espeak-ng backends produce the audio:

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
import json
import math
import multiprocessing
import multiprocessing.util
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import soxr

from espnet_dynenc.atomic_files import write_lines_atomically
from espnet_dynenc.corpora.kaldi_dir import Utterance, read_table, validate_data_dir, write_data_dir

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
BACKENDS = ("auto", "loader", "command")

# ---------------------------------------------------------------------------------------
# Sentence grammar
# ---------------------------------------------------------------------------------------

_ONES = (
    "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN "
    "FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN"
).split()
_TENS = "TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()

COLORS = "RED GREEN BLUE YELLOW WHITE BLACK ORANGE PURPLE".split()
DEVICES = "LAMP LIGHT FAN HEATER RADIO TELEVISION SPEAKER".split()
OBJECTS = "BOX CHAIR TABLE BOOK CUP BALL BAG".split()
PLACES = "KITCHEN BEDROOM BATHROOM GARAGE OFFICE HALLWAY GARDEN LIVING_ROOM".split()
OPENINGS = "DOOR WINDOW".split()
NAMES = "ANNA DAVID EMMA JAMES SARAH PETER".split()
FOODS = "APPLES BANANAS EGGS ORANGES POTATOES TOMATOES".split()
TIMES_OF_DAY = ("TODAY", "TOMORROW", "IN THE MORNING", "IN THE EVENING", "TONIGHT")


def number_words(n: int) -> str:
    """Spell ``n`` (1..99) as uppercase English words: 25 -> ``TWENTY FIVE``."""
    if not 1 <= n <= 99:
        raise ValueError(f"number_words covers 1..99, got {n}")
    if n < 20:
        return _ONES[n - 1]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f" {_ONES[ones - 1]}" if ones else "")


def _counted(numbers: Iterable[int], singular: str, plural: str) -> Tuple[str, ...]:
    """Number phrases with the unit in agreement: ``ONE MINUTE``, ``TWO MINUTES``."""
    return tuple(f"{number_words(n)} {singular if n == 1 else plural}" for n in numbers)


def _clock_times() -> Tuple[str, ...]:
    """Clock times as spoken: ``SEVEN``, ``SEVEN FIFTEEN``, ``SEVEN THIRTY``, ``SEVEN FORTY FIVE``."""
    minutes = ("", " FIFTEEN", " THIRTY", " FORTY FIVE")
    return tuple(number_words(h) + m for h in range(1, 13) for m in minutes)


def _places() -> Tuple[str, ...]:
    # LIVING_ROOM is one slot value but two spoken words
    return tuple(p.replace("_", " ") for p in PLACES)


def _optional(*phrases: str) -> Tuple[str, ...]:
    """A slot that may stay empty: the empty choice counts as much as each phrase."""
    return ("",) + phrases


@dataclass(frozen=True)
class Template:
    """A sentence pattern: one phrase is drawn from each slot, left to right."""

    name: str
    slots: Tuple[Tuple[str, ...], ...]


def _templates() -> Tuple[Template, ...]:
    places = _places()
    on_off = ("ON", "OFF")
    colors = tuple(COLORS)
    return (
        Template("switch_on", (_optional("PLEASE"), ("TURN", "SWITCH"), on_off, ("THE",),
                               _optional(*colors), tuple(DEVICES), ("IN THE",), places)),
        Template("switch_after", (("TURN", "SWITCH"), ("THE",), colors, tuple(DEVICES),
                                  on_off, _optional(*(f"IN THE {p}" for p in places)))),
        Template("timer", (_optional("PLEASE"), ("SET A TIMER FOR",),
                           _counted(range(1, 100), "MINUTE", "MINUTES")
                           + _counted(range(1, 60), "SECOND", "SECONDS")
                           + _counted(range(1, 13), "HOUR", "HOURS"),
                           _optional(*(f"IN THE {p}" for p in places)))),
        Template("temperature", (("SET THE TEMPERATURE IN THE",), places, ("TO",),
                                 _counted(range(10, 31), "DEGREE", "DEGREES"), _optional(*TIMES_OF_DAY))),
        Template("dim", (("DIM", "SET"), ("THE LIGHTS IN THE",), places, ("TO",),
                         _counted(range(5, 100, 5), "PERCENT", "PERCENT"), _optional(*TIMES_OF_DAY))),
        Template("move", (("MOVE", "BRING"), ("THE",), colors, tuple(OBJECTS), ("TO THE",), places)),
        Template("put", (("PUT THE",), colors, tuple(OBJECTS), ("IN THE", "ON THE"), places)),
        Template("find", (("WHERE IS MY", "FIND MY", "SHOW ME THE"), colors, tuple(OBJECTS),
                          _optional(*(f"IN THE {p}" for p in places)))),
        Template("play", (_optional("PLEASE"), ("PLAY", "STOP"), ("MUSIC", "THE RADIO", "THE NEWS"), ("IN THE",), places,
                          _optional(*TIMES_OF_DAY))),
        Template("open", (("OPEN", "CLOSE", "LOCK"), ("THE",), places, tuple(OPENINGS),
                          _optional(*(f"AT {t}" for t in _clock_times())))),
        Template("alarm", (_optional("PLEASE"), ("WAKE ME UP AT", "SET AN ALARM FOR"), _clock_times(),
                           _optional(*TIMES_OF_DAY))),
        Template("call", (("CALL", "SEND A MESSAGE TO", "REMIND"), tuple(NAMES),
                          _optional(*(f"AT {t}" for t in _clock_times())), TIMES_OF_DAY)),
        Template("shopping", (("ADD",), tuple(number_words(n) for n in range(2, 31)), _optional(*colors),
                              tuple(FOODS), ("TO THE SHOPPING LIST", "TO MY SHOPPING LIST"))),
        Template("weather", (("WHAT IS THE WEATHER LIKE", "WILL IT RAIN", "WILL IT BE COLD",
                              "WILL IT BE SUNNY"), TIMES_OF_DAY, _optional(*(f"AT {t}" for t in _clock_times())))),
    )


TEMPLATES: Tuple[Template, ...] = _templates()


def make_sentence(rng: random.Random) -> str:
    """Draw one sentence: a template uniformly, then one phrase per slot."""
    template = rng.choice(TEMPLATES)
    words = " ".join(rng.choice(slot) for slot in template.slots)
    return " ".join(words.split())


def vocabulary() -> List[str]:
    """Every word the grammar can produce, sorted."""
    return sorted({word for t in TEMPLATES for slot in t.slots for phrase in slot for word in phrase.split()})


# ---------------------------------------------------------------------------------------
# Voices and the held-out split
# ---------------------------------------------------------------------------------------

# espeak-ng voice name -> short tag used in speaker ids. "en" is British English; the
# others are the English accents both espeak-ng 1.51 (Debian 12) and 1.52 ship.
ACCENTS: Dict[str, str] = {
    "en-us": "us",
    "en": "gb",
    "en-gb-x-rp": "rp",
    "en-gb-scotland": "sco",
    "en-gb-x-gbclan": "lan",
    "en-gb-x-gbcwmd": "wmd",
    "en-us-nyc": "nyc",
    "en-029": "car",
}

# Voice variants (espeak-ng-data/voices/!v) present in 1.51 and 1.52 that sound like a
# person: whispering, croaking, robotic and echo-heavy variants are left out, and so is
# "Jacky", which clips even at half volume.
VARIANTS: Tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "Alex", "Andy", "Andrea", "Gene", "Lee", "Mario", "Mike", "adam", "aunty", "belinda",
    "benjamin", "david", "edward", "john", "klatt", "klatt2", "klatt3", "linda", "max",
    "norbert", "paul", "quincy", "robert", "shelby", "steph", "steph3", "travis",
)

# espeak-ng pitch parameter (0..99, 50 = the voice's own) per band; a speaker is a voice
# at one band, so the same variant at a low and a high band counts as two speakers.
PITCH_BANDS: Dict[str, Tuple[int, int]] = {"lo": (22, 38), "mid": (42, 58), "hi": (62, 78)}
RATE_WPM = (145, 195)       # speaking rate, words per minute (espeak-ng default 175)
LEVEL_DBFS = (-28.0, -18.0)  # RMS level the 16 kHz output is scaled to
SYNTH_VOLUME = 50           # espeak-ng amplitude (default 100): loud variants clip at 100


@dataclass(frozen=True)
class Voice:
    """An espeak-ng accent with a voice variant, e.g. ``en-us+m3``."""

    accent: str
    variant: str

    @property
    def espeak_name(self) -> str:
        return f"{self.accent}+{self.variant}"

    @property
    def tag(self) -> str:
        return f"{ACCENTS[self.accent]}_{self.variant.lower()}"


@dataclass(frozen=True)
class Speaker:
    """A voice at one pitch band; its ``speaker_id`` prefixes its utterance ids."""

    voice: Voice
    band: str

    @property
    def speaker_id(self) -> str:
        return f"{self.voice.tag}_{self.band}"


@dataclass(frozen=True)
class VoicePlan:
    """Which voices speak in which split; dev and test voices never speak in train."""

    voices: Dict[str, Tuple[Voice, ...]]

    def speakers(self, split: str) -> Tuple[Speaker, ...]:
        return tuple(Speaker(v, band) for v in self.voices[split] for band in PITCH_BANDS)


def plan_voices(seed: int, accents: Sequence[str], variants: Sequence[str],
                num_dev_voices: int, num_test_voices: int) -> VoicePlan:
    """Split the accent x variant voices into train, dev and test.

    Held-out voices take accents round-robin and each a different variant, so every
    accent and (while there are more variants than held-out voices) every variant is
    still heard in training, only never in that combination.
    """
    _check_voice_lists(accents, variants)
    rng = random.Random(f"{seed}/voices")
    shuffled_accents = rng.sample(list(accents), len(accents))
    shuffled_variants = rng.sample(list(variants), len(variants))
    held_out_count = num_dev_voices + num_test_voices
    total = len(accents) * len(variants)
    if held_out_count > min(len(variants), total - 1):
        raise ValueError(
            f"--num_dev_voices + --num_test_voices = {held_out_count}, but at most "
            f"{min(len(variants), total - 1)} voices can be held out with {len(accents)} "
            f"accents and {len(variants)} variants (each held-out voice needs its own "
            f"variant, and training needs at least one voice)")
    held_out = [Voice(shuffled_accents[i % len(accents)], shuffled_variants[i]) for i in range(held_out_count)]
    test, dev = held_out[:num_test_voices], held_out[num_test_voices:]
    train = [Voice(a, v) for a in accents for v in variants if Voice(a, v) not in held_out]
    return VoicePlan({"train": tuple(train), "dev": tuple(dev), "test": tuple(test)})


def _check_voice_lists(accents: Sequence[str], variants: Sequence[str]) -> None:
    unknown = [a for a in accents if a not in ACCENTS]
    if unknown:
        raise ValueError(f"--accents: unknown accent(s) {unknown}; choose from {sorted(ACCENTS)}")
    if not accents or not variants:
        raise ValueError("--accents and --variants need at least one entry each")
    for name, values in (("--accents", accents), ("--variants", variants)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name}: repeated entries in {list(values)}")
    bad = [v for v in variants if not re.fullmatch(r"[A-Za-z0-9]+", v)]
    if bad:
        raise ValueError(f"--variants: names must be letters and digits only, got {bad}")
    lowered = [v.lower() for v in variants]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"--variants: names must differ in more than case: {list(variants)}")


# ---------------------------------------------------------------------------------------
# Utterance plan
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UttPlan:
    """Everything needed to synthesize and list one utterance."""

    utt_id: str
    speaker_id: str
    espeak_voice: str
    text: str
    rate: int
    pitch: int
    level_dbfs: float
    noise_seed: int
    wav_path: str


def plan_split(split: str, count: int, seed: int, voice_plan: VoicePlan, wav_dir: Path) -> List[UttPlan]:
    """Plan ``count`` utterances of ``split``; utterance ``i`` depends only on seed, split, i."""
    speakers = voice_plan.speakers(split)
    plans = []
    for index in range(count):
        rng = random.Random(f"{seed}/{split}/{index}")
        speaker = rng.choice(speakers)
        text = make_sentence(rng)
        utt_id = f"{speaker.speaker_id}-{split}{index:06d}"
        plans.append(UttPlan(
            utt_id=utt_id,
            speaker_id=speaker.speaker_id,
            espeak_voice=speaker.voice.espeak_name,
            text=text,
            rate=rng.randint(*RATE_WPM),
            pitch=rng.randint(*PITCH_BANDS[speaker.band]),
            level_dbfs=round(rng.uniform(*LEVEL_DBFS), 2),
            noise_seed=rng.randrange(1, 2 ** 31),
            wav_path=str(wav_dir / split / f"{utt_id}.wav"),
        ))
    return plans


# ---------------------------------------------------------------------------------------
# espeak-ng backends
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------

def to_16k(samples: np.ndarray, rate: int, level_dbfs: float) -> np.ndarray:
    """Resample int16 ``samples`` to 16 kHz, scale to an RMS level, return int16.

    The level is set in floating point after resampling, and lowered where it would push
    a peak past 0.99 of full scale, so no sample clips.
    """
    audio = samples.astype(np.float64) / 32768.0
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    rms = math.sqrt(float(np.mean(audio ** 2))) if audio.size else 0.0
    if rms > 0:
        gain = min(10 ** (level_dbfs / 20) / rms, 0.99 / float(np.max(np.abs(audio))))
        audio = audio * gain
    return np.round(audio * 32767).astype(np.int16)


def write_wav_atomically(path: Path, samples: np.ndarray) -> None:
    """Write 16 kHz mono 16-bit PCM under a temporary name, then rename into place.

    The standard library's writer is used because libsndfile syncs every file to disk on
    close, which would take a third of the corpus's generation time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.astype("<i2").tobytes())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# Workers: one backend per process, built once
# ---------------------------------------------------------------------------------------

_worker_backend: Optional[Backend] = None


def _init_worker(backend_name: str, espeak_command: str) -> None:
    global _worker_backend
    _worker_backend = make_backend(backend_name, espeak_command)


def _render(plan: UttPlan) -> float:
    """Synthesize one planned utterance into its WAV file; return its duration in seconds."""
    samples, rate = _worker_backend.synthesize(plan.text.lower(), plan.espeak_voice, plan.rate, plan.pitch,
                                               plan.noise_seed)
    if samples.size == 0:
        raise EspeakError(f"{plan.utt_id}: espeak-ng produced no audio for '{plan.text}'")
    audio = to_16k(samples, rate, plan.level_dbfs)
    write_wav_atomically(Path(plan.wav_path), audio)
    return len(audio) / SAMPLE_RATE


def render_all(plans: Sequence[UttPlan], backend_name: str, espeak_command: str, nj: int,
               progress: Optional[Callable[[int, int], None]] = None) -> List[float]:
    """Synthesize every plan with ``nj`` processes; return durations in plan order.

    Even one worker is a separate process, so no thread of the caller can draw from
    libc rand() between seeding and synthesis.
    """
    pool = _worker_context().Pool(nj, _init_worker, (backend_name, espeak_command))
    try:
        durations = _report_progress(pool.imap(_render, plans, chunksize=16), len(plans), progress)
        pool.close()  # a normal exit lets workers run their clean-up hooks
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return durations


def _worker_context():
    """Fork where the platform has it: a spawned worker would import the whole package
    (ESPnet included) again, which takes longer than synthesizing a small corpus. The
    workers touch neither torch nor the parent's espeak-ng: they load their own private
    copy of the library, and otherwise use only numpy, soxr and soundfile.
    """
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _report_progress(results: Iterable[float], total: int, progress: Optional[Callable[[int, int], None]]) -> List[float]:
    durations = []
    for done, duration in enumerate(results, 1):
        durations.append(duration)
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total)
    return durations


# ---------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusConfig:
    """What to make and where. ``settings()`` is what a finished corpus is compared by."""

    data_dir: Path
    wav_dir: Path
    num_train: int = 2500
    num_dev: int = 150
    num_test: int = 200
    seed: int = 1
    num_dev_voices: int = 6
    num_test_voices: int = 12
    accents: Tuple[str, ...] = tuple(ACCENTS)
    variants: Tuple[str, ...] = VARIANTS
    backend: str = "auto"
    espeak_command: str = "espeak-ng"
    nj: int = 2

    def counts(self) -> Dict[str, int]:
        return {"train": self.num_train, "dev": self.num_dev, "test": self.num_test}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""
        for option, value in (("--num_train", self.num_train), ("--num_dev", self.num_dev),
                              ("--num_test", self.num_test), ("--num_dev_voices", self.num_dev_voices),
                              ("--num_test_voices", self.num_test_voices), ("--nj", self.nj)):
            if value < 1:
                raise ValueError(f"{option} must be at least 1, got {value}")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend: unknown backend '{self.backend}'; choose from {', '.join(BACKENDS)}")
        if self.data_dir.resolve() == self.wav_dir.resolve():
            raise ValueError(f"--data_dir and --wav_dir must differ, both are {self.data_dir}")
        _check_voice_lists(self.accents, self.variants)

    def settings(self, backend_name: str, backend_version: str) -> Dict[str, object]:
        return {
            "corpus": "mini_synth", "counts": self.counts(), "seed": self.seed,
            "num_dev_voices": self.num_dev_voices, "num_test_voices": self.num_test_voices,
            "accents": list(self.accents), "variants": list(self.variants),
            "backend": backend_name, "backend_version": backend_version,
            "wav_dir": str(self.wav_dir.resolve()),
        }


@dataclass
class CorpusSummary:
    """What a run made (or found already made)."""

    skipped: bool
    utterances: Dict[str, int]
    hours: Dict[str, float] = field(default_factory=dict)
    vocabulary_size: int = 0
    seconds: float = 0.0
    durations: Dict[str, List[float]] = field(default_factory=dict)


DONE_MARKER = "local/mini_synth/.done"
# files Kaldi/ESPnet tools derive from a data directory; stale after the corpus changes
_DERIVED_FILES = ("utt2dur", "utt2num_frames", "reco2dur", "feats.scp", "cmvn.scp", "segments")


def generate_corpus(config: CorpusConfig, force: bool = False,
                    log: Callable[[str], None] = print) -> CorpusSummary:
    """Make ``data_dir/{train,dev,test}`` and their WAV files, unless already complete.

    The completion marker is removed first and written last, so an interrupted run is
    never taken for a finished one; a finished run with the same settings is skipped.
    """
    config.validate()
    started = time.time()
    backend_name, backend_version = _probe_backend(config)
    settings = config.settings(backend_name, backend_version)
    marker = config.data_dir / DONE_MARKER
    if not force and is_complete(config.data_dir, settings):
        log(f"mini_synth: {config.data_dir} is already complete for these settings; nothing to do")
        return CorpusSummary(True, {s: validate_data_dir(config.data_dir / s) for s in SPLITS})
    marker.unlink(missing_ok=True)
    voice_plan = plan_voices(config.seed, config.accents, config.variants,
                             config.num_dev_voices, config.num_test_voices)
    plans = {s: plan_split(s, n, config.seed, voice_plan, config.wav_dir.resolve())
             for s, n in config.counts().items()}
    log(f"mini_synth: synthesizing {sum(config.counts().values())} utterances with espeak-ng "
        f"({backend_name} {backend_version}), {config.nj} worker(s)")
    durations = _render_splits(config, backend_name, plans, log)
    _write_outputs(config, plans, voice_plan, durations)
    _write_json_atomically(marker, settings)
    summary = CorpusSummary(
        skipped=False,
        utterances={s: len(plans[s]) for s in SPLITS},
        hours={s: sum(durations[s]) / 3600 for s in SPLITS},
        vocabulary_size=len(vocabulary()),
        seconds=time.time() - started,
        durations=durations,
    )
    log(f"mini_synth: done in {summary.seconds:.1f} s: " + ", ".join(
        f"{s} {summary.utterances[s]} utts / {summary.hours[s]:.2f} h" for s in SPLITS))
    return summary


def _probe_backend(config: CorpusConfig) -> Tuple[str, str]:
    """Resolve ``auto``, check the variants exist; return the backend's name and version."""
    backend = make_backend(config.backend, config.espeak_command)
    try:
        check_variants(backend, config.variants)
        return backend.name, backend.version
    finally:
        backend.close()


def _render_splits(config: CorpusConfig, backend_name: str, plans: Dict[str, List[UttPlan]],
                   log: Callable[[str], None]) -> Dict[str, List[float]]:
    """Synthesize all splits in one pool; return each split's durations in plan order."""
    for split in SPLITS:
        _remove_stale_wavs(config.wav_dir / split, {Path(p.wav_path).name for p in plans[split]})
    every_plan = [p for s in SPLITS for p in plans[s]]
    all_durations = render_all(every_plan, backend_name, config.espeak_command, config.nj,
                               lambda done, total: log(f"mini_synth: {done}/{total} utterances"))
    durations, offset = {}, 0
    for split in SPLITS:
        durations[split] = all_durations[offset:offset + len(plans[split])]
        offset += len(plans[split])
    return durations


def is_complete(data_dir: Path, settings: Dict[str, object]) -> bool:
    """True when the marker holds ``settings`` and every data dir and WAV file is there."""
    marker = data_dir / DONE_MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")) != settings:
            return False
        for split, count in settings["counts"].items():
            if validate_data_dir(data_dir / split) != count:
                return False
            if not all(Path(wav).is_file() for wav in read_table(data_dir / split / "wav.scp").values()):
                return False
    except (OSError, ValueError):
        return False
    return True


def _remove_stale_wavs(split_wav_dir: Path, keep: set) -> None:
    """Drop WAV files a run with other settings left in this corpus's own folder."""
    if split_wav_dir.is_dir():
        for wav in split_wav_dir.glob("*.wav"):
            if wav.name not in keep:
                wav.unlink()


def _write_outputs(config: CorpusConfig, plans: Dict[str, List[UttPlan]], voice_plan: VoicePlan,
                   durations: Dict[str, List[float]]) -> None:
    for split in SPLITS:
        split_dir = config.data_dir / split
        for name in _DERIVED_FILES:
            (split_dir / name).unlink(missing_ok=True)
        write_data_dir(split_dir, (Utterance(p.utt_id, p.speaker_id, p.wav_path, p.text) for p in plans[split]))
        by_id = sorted(zip(plans[split], durations[split]), key=lambda pd: pd[0].utt_id.encode())
        _write_lines_atomically(split_dir / "utt2dur", [f"{p.utt_id} {d:.3f}" for p, d in by_id])
    local = config.data_dir / "local" / "mini_synth"
    # text-only training corpus, e.g. for ESPnet's --bpe_train_text / --lm_train_text
    _write_lines_atomically(local / "train_text.txt", [p.text for p in plans["train"]])
    _write_lines_atomically(local / "vocabulary.txt", vocabulary())
    _write_lines_atomically(local / "voices.tsv", ["split\tspeaker\tespeak_voice\tpitch_band"] + [
        f"{s}\t{spk.speaker_id}\t{spk.voice.espeak_name}\t{spk.band}"
        for s in SPLITS for spk in voice_plan.speakers(s)])


def _write_lines_atomically(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_lines_atomically(path, lines)


def _write_json_atomically(path: Path, value: Dict[str, object]) -> None:
    _write_lines_atomically(path, [json.dumps(value, indent=1, sort_keys=True)])
