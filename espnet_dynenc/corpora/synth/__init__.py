"""``mini_synth``: a small English speech corpus made on the spot by espeak-ng.

Sentences come from a small home-assistant grammar with a closed vocabulary of about 140
words, so a small Conformer-CTC learns it within minutes on a CPU. Every utterance is
spoken by one espeak-ng voice (an English accent combined with a voice variant) at a
pitch band, speaking rate and loudness of its own, and dev and test voices are never
heard in training.

Everything is derived from one seed: the voice split from ``Random("<seed>/voices")``,
and each utterance's sentence, speaker, rate, pitch and loudness from
``Random("<seed>/<split>/<index>")``. A run therefore does not depend on the number of
workers or on the order they finish in, and the same seed and backend give the same
bytes.

One module per job, in the order a run uses them:

``grammar``  the sentences and their vocabulary
``voices``   accents, variants, pitch bands and the held-out split
``plan``     each utterance's sentence, speaker, rate, pitch and loudness, before any audio
``espeak``   the espeak-ng backends (``loader``, ``command``, ``auto``)
``audio``    resampling, level and the WAV files
``render``   the worker pool that turns plans into WAV files
``corpus``   the whole run: options, data directories, completion marker

The names callers use are importable from this package directly.
"""
from espnet_dynenc.corpora.synth.audio import SAMPLE_RATE, mix_babble, to_16k, write_wav_atomically
from espnet_dynenc.corpora.synth.corpus import (
    DONE_MARKER,
    CorpusConfig,
    CorpusSummary,
    generate_corpus,
    is_complete,
)
from espnet_dynenc.corpora.synth.espeak import (
    BACKENDS,
    SYNTH_VOLUME,
    Backend,
    CommandBackend,
    EspeakError,
    LoaderBackend,
    check_variants,
    make_backend,
)
from espnet_dynenc.corpora.synth.grammar import (
    COLORS,
    DEVICES,
    FOODS,
    NAMES,
    OBJECTS,
    OPENINGS,
    PLACES,
    TEMPLATES,
    TIMES_OF_DAY,
    Template,
    make_sentence,
    number_words,
    vocabulary,
)
from espnet_dynenc.corpora.synth.plan import BabbleTalker, UttPlan, plan_split
from espnet_dynenc.corpora.synth.render import render_all
from espnet_dynenc.corpora.synth.voices import (
    ACCENTS,
    LEVEL_DBFS,
    PITCH_BANDS,
    RATE_WPM,
    SPLITS,
    VARIANTS,
    Speaker,
    Voice,
    VoicePlan,
    check_voice_lists,
    plan_voices,
)

__all__ = [
    "ACCENTS", "BACKENDS", "COLORS", "DEVICES", "DONE_MARKER", "FOODS", "LEVEL_DBFS", "NAMES", "OBJECTS",
    "OPENINGS", "PITCH_BANDS", "PLACES", "RATE_WPM", "SAMPLE_RATE", "SPLITS", "SYNTH_VOLUME", "TEMPLATES",
    "TIMES_OF_DAY", "VARIANTS", "Backend", "CommandBackend", "CorpusConfig", "CorpusSummary", "EspeakError",
    "BabbleTalker", "LoaderBackend", "Speaker", "Template", "UttPlan", "Voice", "VoicePlan", "check_variants",
    "check_voice_lists", "generate_corpus", "is_complete", "make_backend", "make_sentence", "number_words",
    "mix_babble", "plan_split", "plan_voices", "render_all", "to_16k", "vocabulary", "write_wav_atomically",
]
