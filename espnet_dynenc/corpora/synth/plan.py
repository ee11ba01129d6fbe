"""The utterance plan: who says what, how fast, how high and how loud, before any audio exists.

Each utterance's sentence, speaker, rate, pitch, loudness and noise seed are drawn from
``Random("<seed>/<split>/<index>")``, so a plan, and with it the corpus, depends neither
on the number of workers nor on the order they finish in.

Babble (``babble_talkers`` > 0): other speakers of the same split say other sentences
under the utterance, all together at a signal-to-babble ratio drawn from ``babble_snr``
(dB). Their draws come after the utterance's own, so a corpus without babble is the same
with or without this option. Dev and test babble is spoken by their own held-out voices.
"""
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from espnet_dynenc.corpora.synth.grammar import make_sentence
from espnet_dynenc.corpora.synth.voices import LEVEL_DBFS, PITCH_BANDS, RATE_WPM, VoicePlan


@dataclass(frozen=True)
class BabbleTalker:
    """One voice of the babble under an utterance; ``start`` is where its speech is cut in
    (a fraction of its length), so talkers do not all start at once."""

    espeak_voice: str
    text: str
    rate: int
    pitch: int
    noise_seed: int
    start: float


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
    babble: Tuple[BabbleTalker, ...] = ()
    snr_db: Optional[float] = None  # speech-to-babble ratio; None without babble


def plan_split(split: str, count: int, seed: int, voice_plan: VoicePlan, wav_dir: Path,
               babble_talkers: int = 0, babble_snr: Sequence[float] = (5.0, 15.0)) -> List[UttPlan]:
    """Plan ``count`` utterances of ``split``; utterance ``i`` depends only on seed, split, i
    (and the babble options)."""
    speakers = voice_plan.speakers(split)
    plans = []
    for index in range(count):
        rng = random.Random(f"{seed}/{split}/{index}")
        speaker = rng.choice(speakers)
        text = make_sentence(rng)
        utt_id = f"{speaker.speaker_id}-{split}{index:06d}"
        plan = UttPlan(
            utt_id=utt_id,
            speaker_id=speaker.speaker_id,
            espeak_voice=speaker.voice.espeak_name,
            text=text,
            rate=rng.randint(*RATE_WPM),
            pitch=rng.randint(*PITCH_BANDS[speaker.band]),
            level_dbfs=round(rng.uniform(*LEVEL_DBFS), 2),
            noise_seed=rng.randrange(1, 2 ** 31),
            wav_path=str(wav_dir / split / f"{utt_id}.wav"),
        )
        if babble_talkers > 0:
            others = [s for s in speakers if s.voice != speaker.voice] or list(speakers)
            talkers = []
            for _ in range(babble_talkers):
                other = rng.choice(others)
                talkers.append(BabbleTalker(other.voice.espeak_name, make_sentence(rng), rng.randint(*RATE_WPM),
                                            rng.randint(*PITCH_BANDS[other.band]), rng.randrange(1, 2 ** 31),
                                            round(rng.random(), 3)))
            plan = replace(plan, babble=tuple(talkers), snr_db=round(rng.uniform(*babble_snr), 2))
        plans.append(plan)
    return plans
