"""Voices, speakers and the held-out split of ``mini_synth``.

A *voice* is an espeak-ng English accent combined with a voice variant, a *speaker* is a
voice at one pitch band. Dev and test voices are held out from training: no dev or test
voice is heard, at any pitch, in training. The split follows from the seed alone
(``Random("<seed>/voices")``).
"""
import random
import re
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

SPLITS = ("train", "dev", "test")

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
    check_voice_lists(accents, variants)
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


def check_voice_lists(accents: Sequence[str], variants: Sequence[str]) -> None:
    """Refuse, naming the option, accent and variant lists that would give clashing speaker ids."""
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
