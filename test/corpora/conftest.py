"""Miniature LibriSpeech and TED-LIUM 2 corpora in their real on-disk layouts.

The audio is real: FLAC and uncompressed NIST SPHERE written with soundfile at 16 kHz,
short enough that building a corpus takes milliseconds.
"""
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile

SAMPLE_RATE = 16000
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO_ROOT / "tools" / "venv" / "bin" / "python"


def write_audio(path: Path, seconds: float, seed: int, file_format: str) -> int:
    """Write quiet noise of the given length; return its number of samples."""
    samples = int(round(seconds * SAMPLE_RATE))
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(samples) * 500).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, SAMPLE_RATE, format=file_format, subtype="PCM_16")
    return samples


# ---------------------------------------------------------------- LibriSpeech

SPEAKERS_TXT = textwrap.dedent(
    """\
    ; Some readers may appear in more than one subset.
    ;ID  |SEX| SUBSET           |MINUTES| NAME
    19   | F | train-clean-100  | 25.19 | Kara Shallenberg
    84   | F | dev-clean        |  8.02 | Christie Nowak
    1272 | M | dev-clean        |  8.08 | John Rose
    3000 | M | dev-other        |  8.10 | |CBW|Simon
    """
)

# part -> reader -> chapter -> [(utterance number, words)]
LIBRISPEECH_TRANSCRIPTS: Dict[str, Dict[str, Dict[str, List]]] = {
    "dev-clean": {
        "1272": {
            "128104": [("0000", "MISTER QUILTER IS THE APOSTLE"), ("0001", "NOR IS MISTER QUILTER'S MANNER")],
        },
        "84": {"121123": [("0000", "GO DO YOU HEAR")]},
    },
    "dev-other": {
        "3000": {"15664": [("0000", "FROM THE HIGHEST POINT"), ("0001", "THE VALLEY BELOW")]},
    },
    "train-clean-100": {
        "19": {
            "198": [("0000", "NORTHANGER ABBEY"), ("0001", "THIS LITTLE WORK")],
            "227": [("0000", "CHAPTER ONE")],
        },
    },
}


@dataclass
class MiniLibriSpeech:
    """Where the miniature corpus is, and how many samples each utterance has."""

    root: Path  # the folder that holds LibriSpeech/
    samples: Dict[str, int] = field(default_factory=dict)

    @property
    def corpus(self) -> Path:
        return self.root / "LibriSpeech"

    def flac(self, utt_id: str, part: str) -> Path:
        reader, chapter, _ = utt_id.split("-")
        return self.corpus / part / reader / chapter / f"{utt_id}.flac"


def build_librispeech(root: Path) -> MiniLibriSpeech:
    """Write SPEAKERS.TXT, per-chapter *.trans.txt and one FLAC per transcript line."""
    mini = MiniLibriSpeech(root)
    mini.corpus.mkdir(parents=True)
    (mini.corpus / "SPEAKERS.TXT").write_text(SPEAKERS_TXT, encoding="utf-8")
    seed = 0
    for part, readers in LIBRISPEECH_TRANSCRIPTS.items():
        for reader, chapters in readers.items():
            for chapter, lines in chapters.items():
                chapter_dir = mini.corpus / part / reader / chapter
                chapter_dir.mkdir(parents=True)
                trans = "".join(f"{reader}-{chapter}-{num} {words}\n" for num, words in lines)
                (chapter_dir / f"{reader}-{chapter}.trans.txt").write_text(trans, encoding="utf-8")
                for num, _ in lines:
                    utt_id = f"{reader}-{chapter}-{num}"
                    seed += 1
                    seconds = 0.1 + 0.05 * seed
                    mini.samples[utt_id] = write_audio(chapter_dir / f"{utt_id}.flac", seconds, seed, "FLAC")
    return mini


@pytest.fixture
def mini_librispeech(tmp_path: Path) -> MiniLibriSpeech:
    """A LibriSpeech with parts dev-clean, dev-other and train-clean-100 (4 readers, 8 utterances)."""
    return build_librispeech(tmp_path / "corpus")


# ---------------------------------------------------------------- TED-LIUM 2

# split -> talk -> (recording seconds, .stm text)
TEDLIUM_TALKS: Dict[str, Dict[str, tuple]] = {
    "train": {
        "AlphaTalk_2010": (
            3.0,
            # an ignored segment, a split contraction, noise tokens, <sil>, a pronunciation
            # variant, a segment of noise only, and one that runs past the recording's end
            "AlphaTalk_2010 1 AlphaTalk_2010 0.00 0.25 <o,f0,male> ignore_time_segment_in_scoring\n"
            "AlphaTalk_2010 1 AlphaTalk_2010 0.29 1.10 <o,f0,male> so it 's {NOISE} a test\n"
            "AlphaTalk_2010 1 AlphaTalk_2010 1.20 2.00 <o,f0,male> i don 't <sil> think the(2) {UM} end\n"
            "AlphaTalk_2010 1 AlphaTalk_2010 2.10 2.40 <o,f0,male> {COUGH}\n"
            "AlphaTalk_2010 1 AlphaTalk_2010 2.50 3.20 <o,f0,male> <unk> 's we 're {BREATH} done\n",
        ),
        "BetaTalk_2011": (
            2.0,
            "BetaTalk_2011 1 BetaTalk_2011 0.05 1.50 <o,f0,female> hello {SMACK} world\n",
        ),
    },
    "dev": {
        "GammaTalk_2012": (
            1.5,
            "GammaTalk_2012 1 GammaTalk_2012 0.10 0.90 <o,f0,male> they 're {UH} here\n"
            "GammaTalk_2012 1 GammaTalk_2012 0.90 1.40 <o,f0,male> ignore_time_segment_in_scoring\n",
        ),
    },
    "test": {
        "DeltaTalk_2013": (
            1.2,
            "DeltaTalk_2013 1 DeltaTalk_2013 0.20 1.00 <o,f0,female> what 's next\n",
        ),
    },
}


@dataclass
class MiniTedlium:
    """Where the miniature TED-LIUM 2 is."""

    root: Path  # the folder that holds TEDLIUM_release2/

    @property
    def corpus(self) -> Path:
        return self.root / "TEDLIUM_release2"

    def sph(self, split: str, talk: str) -> Path:
        return self.corpus / split / "sph" / f"{talk}.sph"

    def stm(self, split: str, talk: str) -> Path:
        return self.corpus / split / "stm" / f"{talk}.stm"


def build_tedlium(root: Path) -> MiniTedlium:
    """Write one uncompressed NIST SPHERE recording and one .stm per talk."""
    mini = MiniTedlium(root)
    for seed, (split, talks) in enumerate(TEDLIUM_TALKS.items()):
        for talk, (seconds, stm_text) in talks.items():
            write_audio(mini.sph(split, talk), seconds, seed, "NIST")
            mini.stm(split, talk).parent.mkdir(parents=True, exist_ok=True)
            mini.stm(split, talk).write_text(stm_text, encoding="utf-8")
    return mini


@pytest.fixture
def mini_tedlium(tmp_path: Path) -> MiniTedlium:
    """A TED-LIUM 2 with two training talks and one talk each in dev and test."""
    return build_tedlium(tmp_path / "corpus")


def read_lines(path: Path) -> List[str]:
    """A file's lines without their newlines (every line must end with one)."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: last line lacks a newline"
    return text.splitlines()


def recording_python(folder: Path) -> Path:
    """A stand-in for the python command that only records its arguments, one call per line.

    It lets a test see exactly how local/data.sh calls the entry points, in milliseconds.
    """
    script = folder / "recording-python"
    script.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls.txt"\n')
    script.chmod(0o755)
    return script
