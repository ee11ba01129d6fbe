"""Recipe directories and tiny Kaldi-style corpora made on the spot for the asr.sh tests.

A test recipe lives in a temporary directory and links the template the way corpus
recipes do (asr.sh, path.sh, utils as symbolic links; cmd.sh copied), so asr.sh runs
exactly as in egs2/<corpus>/asr1.
"""
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "egs2" / "TEMPLATE" / "asr1"
RATE = 16000
WORDS = "the cat sat on a mat dog ran far away".split()


def sclite_path() -> Optional[str]:
    """sclite on PATH, or where Debian's sctk package puts it."""
    found = shutil.which("sclite")
    if found:
        return found
    debian = Path("/usr/lib/sctk/bin/sclite")
    return str(debian) if debian.is_file() else None


def make_recipe(root: Path, data_script: str = "#!/usr/bin/env bash\nexit 0\n") -> Path:
    recipe = root / "egs2" / "tiny" / "asr1"
    (recipe / "local").mkdir(parents=True)
    for name in ("asr.sh", "path.sh", "utils"):
        (recipe / name).symlink_to(TEMPLATE / name)
    shutil.copy(TEMPLATE / "cmd.sh", recipe / "cmd.sh")
    script = recipe / "local" / "data.sh"
    script.write_text(data_script)
    script.chmod(0o755)
    return recipe


def run_asr(recipe: Path, *args: str, env: Optional[Dict[str, str]] = None, timeout: int = 300):
    """Run ./asr.sh in ``recipe``; stdout and stderr together in ``.stdout``."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(["./asr.sh", *args], cwd=recipe, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


def done_markers(recipe: Path) -> List[Path]:
    return sorted(p for p in recipe.rglob("*") if p.is_file() and p.name.endswith(".done"))


def read_table(path: Path) -> Dict[str, str]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        table[key] = value
    return table


@dataclass
class Utt:
    utt_id: str
    speaker: str
    seconds: float
    words: str


def write_wav(path: Path, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(round(seconds * rate))) * 3000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return samples


def write_lines(path: Path, lines: List[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in sorted(lines)), encoding="utf-8")


def write_plain_set(data: Path, utts: List[Utt], pipe_every: int = 0, seed: int = 0) -> None:
    """One wav per utterance; every ``pipe_every``-th wav.scp entry is a 'cat file |' pipe."""
    scp = []
    for index, utt in enumerate(utts):
        wav = data / "wav" / f"{utt.utt_id}.wav"
        write_wav(wav, utt.seconds, seed + index)
        entry = f"cat {wav} |" if pipe_every and index % pipe_every == 0 else str(wav)
        scp.append(f"{utt.utt_id} {entry}")
    write_lines(data / "wav.scp", scp)
    write_common(data, utts)


def write_common(data: Path, utts: List[Utt]) -> None:
    write_lines(data / "text", [f"{u.utt_id} {u.words}".rstrip() for u in utts])
    write_lines(data / "utt2spk", [f"{u.utt_id} {u.speaker}" for u in utts])
    speakers: Dict[str, List[str]] = {}
    for utt in sorted(utts, key=lambda u: u.utt_id):
        speakers.setdefault(utt.speaker, []).append(utt.utt_id)
    write_lines(data / "spk2utt", [f"{s} {' '.join(ids)}" for s, ids in speakers.items()])


def write_segmented_set(data: Path, utts: List[Utt], recording_rate: int = 8000) -> Dict[str, tuple]:
    """Two recordings at ``recording_rate`` cut by a segments file; returns utt -> (start, end)."""
    spans, segments, scp, start = {}, [], [], {}
    for index, utt in enumerate(utts):
        rec = f"{utt.speaker}-rec"
        begin = start.get(rec, 0.25)
        spans[utt.utt_id] = (begin, round(begin + utt.seconds, 2))
        start[rec] = round(begin + utt.seconds + 0.1, 2)
        segments.append(f"{utt.utt_id} {rec} {spans[utt.utt_id][0]:.2f} {spans[utt.utt_id][1]:.2f}")
    for index, rec in enumerate(sorted(start)):
        wav = data / "wav" / f"{rec}.wav"
        write_wav(wav, start[rec] + 0.3, 100 + index, recording_rate)
        scp.append(f"{rec} {wav}")
    write_lines(data / "wav.scp", scp)
    write_lines(data / "segments", segments)
    write_common(data, utts)
    return spans


def words(index: int, count: int) -> str:
    return " ".join(WORDS[(index + k) % len(WORDS)] for k in range(count))


TRAIN = [Utt(f"spk{i % 2}-tr{i:02d}", f"spk{i % 2}", 0.3 + 0.05 * i, words(i, 1 + i % 3)) for i in range(8)]
# dropped by stage 4: no text, too short (< 0.1 s), too long (> --max_wav_duration 1.0)
TRAIN += [Utt("spk0-tr90", "spk0", 0.5, ""), Utt("spk1-tr91", "spk1", 0.05, "a"), Utt("spk1-tr92", "spk1", 1.2, "far")]
DEV = [Utt(f"spk{i % 2}-dv{i:02d}", f"spk{i % 2}", 0.4, words(i + 3, 2)) for i in range(3)] + [
    Utt("spk0-dv09", "spk0", 0.4, "")
]
TEST = [Utt(f"spkA-ts{i:02d}", "spkA", 0.3 + 0.1 * i, words(i + 5, 2)) for i in range(2)] + [
    Utt(f"spkB-ts{i:02d}", "spkB", 0.4, words(i, 3)) for i in range(2, 4)
]


@dataclass
class TinyCorpus:
    recipe: Path
    test_spans: Dict[str, tuple]


def write_tiny_corpus(recipe: Path) -> TinyCorpus:
    """data/train (with pipes), data/dev, data/test (8 kHz recordings cut by segments)."""
    write_plain_set(recipe / "data" / "train", TRAIN, pipe_every=3)
    write_plain_set(recipe / "data" / "dev", DEV, seed=50)
    spans = write_segmented_set(recipe / "data" / "test", TEST)
    return TinyCorpus(recipe, spans)


DATA_OPTS = ["--train_set", "train", "--valid_set", "dev", "--test_sets", "test", "--nj", "2", "--lang", "en"]


@pytest.fixture
def tiny_recipe(tmp_path) -> TinyCorpus:
    recipe = make_recipe(tmp_path)
    return write_tiny_corpus(recipe)

