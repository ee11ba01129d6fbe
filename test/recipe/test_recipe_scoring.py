"""The project's scorer: exact counts always; byte-identical to sclite when sclite is installed."""
import random
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_dynenc.scoring.sclite_format import score_files, sclite_report, total_counts
from espnet_dynenc.scoring.wer import align
from recipe.conftest import sclite_path

# substitutions, a deletion, insertions, a correct sentence, case differences, and the
# "a b" -> "b c" case where sclite's 3/3/4 costs prefer delete + match + insert
REF = [
    ("the cat sat on the mat", "spkA-spkA_u1"),
    ("hello world", "spkA-spkA_u2"),
    ("a b c d", "spkB-spkB_u1"),
    ("one two three", "spkB-spkB_u2"),
    ("a b", "spkC-spkC_u1"),
]
HYP = ["the cat sat on mat", "Hello big world", "a x c y", "one two three", "b c"]
SUM_AVG = "       | Sum/Avg|    5     17 | 76.5   11.8   11.8   11.8   35.3   80.0 |"
SCORES = ["5 0 1 0", "2 0 0 1", "2 2 0 0", "3 0 0 0", "1 0 1 1"]


def write_trn(folder: Path, ref, hyp):
    (folder / "ref.trn").write_text("".join(f"{text}\t({utt})\n" for text, utt in ref))
    (folder / "hyp.trn").write_text("".join(f"{text}\t({utt})\n" for text, (_, utt) in zip(hyp, ref)))


def own_report(folder: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.score", "--ref", "ref.trn", "--hyp", "hyp.trn"],
                          cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    return proc.stdout


def sclite_report_of(folder: Path) -> str:
    return subprocess.run([sclite_path(), "-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "rm", "-o", "all",
                           "stdout"], cwd=folder, stdout=subprocess.PIPE, text=True, check=True).stdout


def test_alignment_uses_sclite_costs():
    assert [p.op for p in align("a b".split(), "b c".split())] == ["D", "C", "I"]
    assert [p.op for p in align("a b c".split(), "a c".split())] == ["C", "D", "C"]
    assert [p.op for p in align([], "x y".split())] == ["I", "I"]
    assert [p.op for p in align("Word".split(), "wORD".split())] == ["C"]  # ASCII case is ignored


def test_own_scorer_exact_numbers(tmp_path):
    write_trn(tmp_path, REF, HYP)
    total = total_counts(score_files(tmp_path / "ref.trn", tmp_path / "hyp.trn"))
    assert (total.correct, total.substitutions, total.deletions, total.insertions) == (13, 2, 2, 2)
    assert (total.ref_words, total.sentences, total.sentence_errors) == (17, 5, 4)
    report = own_report(tmp_path)
    assert SUM_AVG in report.splitlines()
    assert "       | SPKR   | # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |" in report
    assert [line.split(") ")[1] for line in report.splitlines() if line.startswith("Scores:")] == SCORES
    # "a b" against "b c": deletion, match, insertion (two substitutions would cost more)
    assert "REF:  A b * \nHYP:  * b C \nEval: D   I \n" in report


def test_own_scorer_rejects_hypothesis_without_reference(tmp_path):
    write_trn(tmp_path, REF, HYP)
    with open(tmp_path / "hyp.trn", "a") as f:
        f.write("extra words\t(spkZ-spkZ_u9)\n")
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.score", "--ref", "ref.trn", "--hyp", "hyp.trn"],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode != 0 and "(spkz-spkz_u9)" in proc.stderr


def test_own_scorer_refuses_sclite_alternations(tmp_path):
    write_trn(tmp_path, [("x { y / z } w", "s-u1")], ["x z w"])
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.score", "--ref", "ref.trn", "--hyp", "hyp.trn"],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode != 0 and "alternations" in proc.stderr and "ref.trn:1" in proc.stderr


def random_case(seed: int):
    rnd = random.Random(seed)
    vocab = ["a", "b", "c", "A", "dd", "Ée", "你好", "<space>", "x" * 12]
    ref, hyp = [], []
    for spk in range(rnd.randint(1, 4)):
        for utt in range(rnd.randint(1, 3)):
            words = [rnd.choice(vocab) for _ in range(rnd.choice([0, 1, 3, 8, 20]))]
            edited = list(words)
            for _ in range(rnd.randint(0, 6)):
                roll = rnd.random()
                if roll < 0.3 and edited:
                    edited.pop(rnd.randrange(len(edited)))
                elif roll < 0.6:
                    edited.insert(rnd.randrange(len(edited) + 1), rnd.choice(vocab))
                elif edited:
                    edited[rnd.randrange(len(edited))] = rnd.choice(vocab)
            ref.append((" ".join(words), f"s{spk}{'x' * spk}-u{utt}"))
            hyp.append(" ".join(edited))
    return ref, hyp


@pytest.mark.skipif(sclite_path() is None, reason="sclite (Debian package sctk) is not installed")
def test_sclite_and_own_scorer_agree(tmp_path):
    write_trn(tmp_path, REF, HYP)
    expected = sclite_report_of(tmp_path)
    assert SUM_AVG in expected.splitlines()
    assert own_report(tmp_path) == expected
    for seed in range(40):
        write_trn(tmp_path, *random_case(seed))
        own = sclite_report(tmp_path / "ref.trn", tmp_path / "hyp.trn", title="hyp.trn")
        assert own == sclite_report_of(tmp_path), f"seed {seed}"
