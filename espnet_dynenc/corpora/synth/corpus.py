"""Make the whole ``mini_synth`` corpus: plan, synthesize, write the data directories, mark done.

A run writes ``<data_dir>/{train,dev,test}`` (Kaldi-style, with ``utt2dur``), a text-only
training corpus, the vocabulary and the voice list under ``<data_dir>/local/mini_synth``,
and last the completion marker holding the settings; a finished corpus with the same
settings is not made again.
"""
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.corpora.kaldi_dir import Utterance, validate_data_dir, write_data_dir
from espnet_dynenc.corpora.synth.espeak import BACKENDS, check_variants, make_backend
from espnet_dynenc.corpora.synth.grammar import vocabulary
from espnet_dynenc.corpora.synth.plan import UttPlan, plan_split
from espnet_dynenc.corpora.synth.render import render_all
from espnet_dynenc.corpora.synth.voices import (
    ACCENTS, SPLITS, VARIANTS, VoicePlan, check_voice_lists, plan_voices,
)
from espnet_dynenc.recipe.tables import read_table, write_lines


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
    babble_talkers: int = 0
    babble_snr: Tuple[float, float] = (5.0, 15.0)

    def counts(self) -> Dict[str, int]:
        return {"train": self.num_train, "dev": self.num_dev, "test": self.num_test}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""
        for option, value in (("--num_train", self.num_train), ("--num_dev", self.num_dev),
                              ("--num_test", self.num_test), ("--num_dev_voices", self.num_dev_voices),
                              ("--num_test_voices", self.num_test_voices), ("--nj", self.nj)):
            if value < 1:
                raise ValueError(f"{option} must be at least 1, got {value}")
        if self.babble_talkers < 0:
            raise ValueError(f"--babble_talkers must be 0 or more, got {self.babble_talkers}")
        low, high = self.babble_snr
        if not low <= high:
            raise ValueError(f"--babble_snr: the low end {low} dB is above the high end {high} dB")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend: unknown backend '{self.backend}'; choose from {', '.join(BACKENDS)}")
        if self.data_dir.resolve() == self.wav_dir.resolve():
            raise ValueError(f"--data_dir and --wav_dir must differ, both are {self.data_dir}")
        check_voice_lists(self.accents, self.variants)

    def settings(self, backend_name: str, backend_version: str) -> Dict[str, object]:
        return {
            "corpus": "mini_synth", "counts": self.counts(), "seed": self.seed,
            "num_dev_voices": self.num_dev_voices, "num_test_voices": self.num_test_voices,
            "accents": list(self.accents), "variants": list(self.variants),
            "backend": backend_name, "backend_version": backend_version,
            "wav_dir": str(self.wav_dir.resolve()),
            # only with babble, so that a corpus made before the option still counts as complete
            **({"babble_talkers": self.babble_talkers, "babble_snr": list(self.babble_snr)}
               if self.babble_talkers else {}),
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
    plans = {s: plan_split(s, n, config.seed, voice_plan, config.wav_dir.resolve(), config.babble_talkers,
                           config.babble_snr)
             for s, n in config.counts().items()}
    log(f"mini_synth: synthesizing {sum(config.counts().values())} utterances with espeak-ng "
        f"({backend_name} {backend_version}), {config.nj} worker(s)")
    durations = _render_splits(config, backend_name, plans, log)
    _write_outputs(config, plans, voice_plan, durations)
    # the folder exists: _write_outputs wrote local/mini_synth just before
    write_text_atomically(marker, json.dumps(settings, indent=1, sort_keys=True) + "\n")
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
        utt2dur = {p.utt_id: f"{d:.3f}" for p, d in zip(plans[split], durations[split])}
        write_data_dir(split_dir, (Utterance(p.utt_id, p.speaker_id, p.wav_path, p.text) for p in plans[split]),
                       {"utt2dur": utt2dur})
    local = config.data_dir / "local" / "mini_synth"
    # text-only training corpus, e.g. for ESPnet's --bpe_train_text / --lm_train_text
    write_lines(local / "train_text.txt", [p.text for p in plans["train"]])
    write_lines(local / "vocabulary.txt", vocabulary())
    write_lines(local / "voices.tsv", ["split\tspeaker\tespeak_voice\tpitch_band"] + [
        f"{s}\t{spk.speaker_id}\t{spk.voice.espeak_name}\t{spk.band}"
        for s in SPLITS for spk in voice_plan.speakers(s)])
