"""Synthesize planned utterances into WAV files with a pool of worker processes.

Each worker builds its espeak-ng backend once and renders whole utterances, so the
audio of an utterance depends only on its plan, never on which worker drew it.
"""
import multiprocessing
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence

from espnet_dynenc.corpora.synth.audio import (
    SAMPLE_RATE,
    mix_babble,
    resample_16k,
    set_level,
    to_16k,
    write_wav_atomically,
)
from espnet_dynenc.corpora.synth.espeak import Backend, EspeakError, make_backend
from espnet_dynenc.corpora.synth.plan import UttPlan

_worker_backend: Optional[Backend] = None


def _init_worker(backend_name: str, espeak_command: str) -> None:
    global _worker_backend
    _worker_backend = make_backend(backend_name, espeak_command)


def _render(plan: UttPlan) -> float:
    """Synthesize one planned utterance (and its babble) into its WAV file; return its
    duration in seconds."""
    samples, rate = _worker_backend.synthesize(plan.text.lower(), plan.espeak_voice, plan.rate, plan.pitch,
                                               plan.noise_seed)
    if samples.size == 0:
        raise EspeakError(f"{plan.utt_id}: espeak-ng produced no audio for '{plan.text}'")
    if not plan.babble:
        audio = to_16k(samples, rate, plan.level_dbfs)
    else:
        talkers = []
        for talker in plan.babble:
            other, other_rate = _worker_backend.synthesize(talker.text.lower(), talker.espeak_voice, talker.rate,
                                                           talker.pitch, talker.noise_seed)
            talkers.append((resample_16k(other, other_rate), talker.start))
        audio = set_level(mix_babble(resample_16k(samples, rate), talkers, plan.snr_db), plan.level_dbfs)
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
