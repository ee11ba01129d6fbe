"""Align a reference and a hypothesis token sequence the way sclite does, and count errors.

sclite charges 3 for an insertion or a deletion and 4 for a substitution (not 1/1/1 as in
plain Levenshtein distance). The weights matter: "a b" vs "b c" costs the same two errors
either way, but sclite prefers deletion + correct + insertion (one word correct) over two
substitutions, and reports Corr/Sub/Del/Ins accordingly. Among equally cheap alignments it
prefers, in each cell, substitution/match, then deletion, then insertion; the traceback
below makes the same choices so that the counts agree with sclite's.

Words are compared case-insensitively on ASCII letters only, as sclite does by default.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

CORRECT = "C"
SUBSTITUTION = "S"
DELETION = "D"
INSERTION = "I"

SUBSTITUTION_COST = 4
INSERTION_COST = 3
DELETION_COST = 3

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# traceback codes stored per DP cell
_DIAGONAL, _UP, _LEFT = 0, 1, 2


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only (sclite leaves other letters as they are)."""
    return text.translate(_ASCII_LOWER)


def ascii_upper(text: str) -> str:
    """Upper-case ASCII letters only (sclite marks errors this way in its alignments)."""
    return text.translate(_ASCII_UPPER)


@dataclass(frozen=True)
class AlignedPair:
    """One column of an alignment: ``ref`` is None for an insertion, ``hyp`` for a deletion."""

    ref: Optional[str]
    hyp: Optional[str]
    op: str


@dataclass
class ErrorCounts:
    """Counts over one or more utterances."""

    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentences: int = 0
    sentence_errors: int = 0

    @property
    def ref_words(self) -> int:
        return self.correct + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.correct + other.correct,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.sentences + other.sentences,
            self.sentence_errors + other.sentence_errors,
        )


def align(ref: Sequence[str], hyp: Sequence[str]) -> List[AlignedPair]:
    """Minimum-cost alignment of ``ref`` and ``hyp`` under sclite's costs and tie rules."""
    ref_keys = [ascii_lower(w) for w in ref]
    hyp_keys = [ascii_lower(w) for w in hyp]
    moves = _dp_moves(ref_keys, hyp_keys)
    return _traceback(ref, hyp, ref_keys, hyp_keys, moves)


def count_errors(alignment: Sequence[AlignedPair]) -> ErrorCounts:
    """Counts of one utterance; an utterance with any error is a sentence error."""
    counts = ErrorCounts(sentences=1)
    for pair in alignment:
        if pair.op == CORRECT:
            counts.correct += 1
        elif pair.op == SUBSTITUTION:
            counts.substitutions += 1
        elif pair.op == DELETION:
            counts.deletions += 1
        else:
            counts.insertions += 1
    counts.sentence_errors = int(counts.errors > 0)
    return counts


def _dp_moves(ref_keys: List[str], hyp_keys: List[str]) -> np.ndarray:
    """Fill the cost table row by row (one row per reference word); return the moves.

    Within a row the insertion term depends on the cell to its left, which makes the row
    a running minimum: cost[j] = min_k<=j (best_without_insertion[k] + 3 * (j - k)).
    numpy computes that with ``minimum.accumulate``, so long character sequences stay fast.
    """
    n, m = len(ref_keys), len(hyp_keys)
    vocab = {w: i for i, w in enumerate(sorted(set(ref_keys) | set(hyp_keys)))}
    hyp_ids = np.array([vocab[w] for w in hyp_keys], dtype=np.int64)
    steps = np.arange(m + 1, dtype=np.int64) * INSERTION_COST
    moves = np.full((n + 1, m + 1), _LEFT, dtype=np.int8)
    moves[1:, 0] = _UP
    previous = steps.copy()
    for i in range(1, n + 1):
        mismatch = np.where(hyp_ids == vocab[ref_keys[i - 1]], 0, SUBSTITUTION_COST)
        diagonal = previous[:-1] + mismatch
        up = previous[1:] + DELETION_COST
        best_no_left = np.empty(m + 1, dtype=np.int64)
        best_no_left[0] = previous[0] + DELETION_COST
        best_no_left[1:] = np.minimum(diagonal, up)
        current = np.minimum.accumulate(best_no_left - steps) + steps
        left = current[:-1] + INSERTION_COST
        # sclite's tie order: diagonal if not worse than either, then deletion if strictly
        # better than insertion, else insertion
        row = np.where((diagonal <= up) & (diagonal <= left), _DIAGONAL, np.where(up < left, _UP, _LEFT))
        moves[i, 1:] = row
        previous = current
    return moves


def _traceback(ref, hyp, ref_keys, hyp_keys, moves: np.ndarray) -> List[AlignedPair]:
    pairs: List[AlignedPair] = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        move = moves[i, j]
        if move == _DIAGONAL:
            op = CORRECT if ref_keys[i - 1] == hyp_keys[j - 1] else SUBSTITUTION
            pairs.append(AlignedPair(ref[i - 1], hyp[j - 1], op))
            i, j = i - 1, j - 1
        elif move == _UP:
            pairs.append(AlignedPair(ref[i - 1], None, DELETION))
            i -= 1
        else:
            pairs.append(AlignedPair(None, hyp[j - 1], INSERTION))
            j -= 1
    pairs.reverse()
    return pairs
