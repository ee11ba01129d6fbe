"""The utterance plan: who says what, how fast, how high and how loud, before any audio exists.

Each utterance's sentence, speaker, rate, pitch, loudness and noise seed are drawn from
``Random("<seed>/<split>/<index>")``, so a plan, and with it the corpus, depends neither
on the number of workers nor on the order they finish in.
"""
import random
from dataclasses import dataclass
from pathlib import Path
from typing import List

from espnet_dynenc.corpora.synth.grammar import make_sentence
from espnet_dynenc.corpora.synth.voices import LEVEL_DBFS, PITCH_BANDS, RATE_WPM, VoicePlan


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
